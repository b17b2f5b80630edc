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
from collections.abc import Callable, Iterator, Sequence
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


@contextlib.contextmanager
def local_server(model: str, log_path: Path, *, seed: int = 0, max_candidates: int = 16,
                 extra_args: Sequence[str] = (), start_timeout_s: float = 900.0
                 ) -> Iterator[str]:
    """Serve `model`, yield its base URL once healthy, and stop it on the way out."""
    argv = serve_command(model, seed, max_candidates, extra_args)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"},
                                   start_new_session=True)
        logger.info("starting selfcritic serve --model %s (pid %d, log %s)",
                    model, process.pid, log_path)
        try:
            start = time.monotonic()
            url = bound_url(process, log_path)
            if not wait_healthy(url, process, lambda: _tail(log_path), start_timeout_s):
                raise RuntimeError(f"selfcritic serve not healthy after {start_timeout_s:.0f} "
                                   f"s; last log lines:\n{_tail(log_path)}")
            logger.info("server healthy at %s after %.0f s", url, time.monotonic() - start)
            yield url
        finally:
            stop(process)


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
                 headers: dict[str, str] | None = None, interval_s: float = 0.5) -> bool:
    """Poll `url`/health until it answers 200 (True) or `timeout_s` passes (False); raise
    with the log's tail if the process exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log()[-4000:]}")
        try:
            if httpx.get(url + "/health", headers=headers, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval_s)
    return False


def stop(process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """SIGTERM the server's process group (only what we started); SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
    logger.info("stopped the server (exit %s)", process.returncode)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
