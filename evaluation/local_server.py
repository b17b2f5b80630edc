"""The one way to start `selfcritic serve` as a child process: on a port it binds itself
(`--port 0`, so no other process can take the port between choosing and binding), its
bound URL read from its log, waited for until /health answers, and stopped with its whole
process group (vLLM's engine processes included). Used by `eval policy --model`, the
benchmarks and the integration tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

BOUND = re.compile(r"Bound (http://\S+);")
"""The line `selfcritic serve` logs once it has bound its port (`server.runner`)."""


def free_port() -> int:
    """A port free now, for servers that cannot bind port 0 and say which port they took
    (vLLM's own, LiteLLM's): another process may still take it before they bind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(model: str, seed: int, max_candidates: int,
                  extra_args: Sequence[str] = ()) -> list[str]:
    """The `selfcritic serve` command line for `model` on a loopback port of its choosing."""
    limit = str(max(16, max_candidates))
    return [sys.executable, "-m", "selfcritic", "serve", "--model", model,
            "--host", "127.0.0.1", "--port", "0", "--enforce-eager", "--seed", str(seed),
            "--max-n", limit, "--max-candidates", limit, *extra_args]


@dataclass
class ServerProcess:
    """A server started by `launch`: its URL, its process (the leader of a process group
    of its own) and its log."""

    url: str
    process: subprocess.Popen
    log_path: Path
    name: str = "server"
    started_s: float = 0.0
    """Seconds from launch until /health answered 200."""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int | None:
        """Signal the server's process group (only what we started; vLLM's engine
        processes included), SIGKILL it if it lingers; the exit status."""
        stop(self.process, sig, timeout_s)
        return self.process.returncode


def launch(argv: Sequence[str], log_path: Path, *, url: str | None = None,
           env: Mapping[str, str] | None = None, cwd: Path | None = None,
           name: str = "server", start_timeout_s: float = 900.0,
           health_headers: dict[str, str] | None = None, interval_s: float = 0.5,
           health_path: str = "/health") -> ServerProcess:
    """Start `argv` in a process group of its own, logging to `log_path`, and wait until
    its `health_path` answers 200. `url`: where it listens (a server told its port); None for
    `selfcritic serve --port 0`, whose bound URL is read from its log. On failure the
    group is stopped and a RuntimeError carries the log's tail."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "w") as log:  # the child holds its own copy of the descriptor
        process = subprocess.Popen(list(argv), cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                                   start_new_session=True)
    logger.info("starting %s (pid %d, log %s)", name, process.pid, log_path)
    try:
        server = ServerProcess(url or bound_url(process, log_path), process, log_path, name)
        if not wait_healthy(server.url, process, server.log_tail, start_timeout_s,
                            health_headers, interval_s, health_path):
            raise RuntimeError(f"{name} not healthy after {start_timeout_s:.0f} s; last log "
                               f"lines:\n{_tail(log_path)}")
    except BaseException:
        stop(process)
        raise
    server.started_s = time.monotonic() - started
    logger.info("%s healthy at %s after %.0f s", name, server.url, server.started_s)
    return server


@contextlib.contextmanager
def local_server(model: str, log_path: Path, *, seed: int = 0, max_candidates: int = 16,
                 extra_args: Sequence[str] = (), start_timeout_s: float = 900.0
                 ) -> Iterator[str]:
    """Serve `model`, yield its base URL once healthy, and stop it on the way out."""
    server = launch(serve_command(model, seed, max_candidates, extra_args), log_path,
                    name=f"selfcritic serve --model {model}", start_timeout_s=start_timeout_s)
    try:
        yield server.url
    finally:
        server.stop()


def bound_url(process: subprocess.Popen, log_path: Path, timeout_s: float = 120) -> str:
    """The URL the server logs once it has bound its port; a RuntimeError with the log's
    tail if it exits first or binds nothing within `timeout_s` (then it is killed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = BOUND.search(log_path.read_text(errors="replace"))
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"selfcritic serve exited with {process.returncode} before "
                               f"binding a port; last log lines:\n{_tail(log_path)}")
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"selfcritic serve bound no port within {timeout_s:.0f} s; last log "
                       f"lines:\n{_tail(log_path)}")


def wait_healthy(url: str, process: subprocess.Popen, log: Callable[[], str], timeout_s: float,
                 headers: dict[str, str] | None = None, interval_s: float = 0.5,
                 path: str = "/health") -> bool:
    """Poll `url` + `path` until it answers 200 (True) or `timeout_s` passes (False);
    raise with the log's tail if the process exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log()[-4000:]}")
        try:
            if httpx.get(url + path, headers=headers, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval_s)
    return False


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> None:
    """Signal the process group of `process` (a session leader we started); SIGKILL the
    group if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
    logger.info("stopped pid %d (exit %s)", process.pid, process.returncode)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
