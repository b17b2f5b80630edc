"""In-process mode: `selfcritic serve` as a child process on a free loopback port.

`eval policy --model DIR|default` without `--url` starts the server (eager, so it starts
quickly), waits for /health, yields its URL and always stops it, its engine processes
included (the server leads its own process group).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(model: str, port: int, seed: int, max_candidates: int,
                  extra_args: Sequence[str] = ()) -> list[str]:
    """The `selfcritic serve` command line for `model` on `port`."""
    limit = str(max(16, max_candidates))
    return [sys.executable, "-m", "server.cli", "serve", "--model", model,
            "--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--seed", str(seed),
            "--max-n", limit, "--max-candidates", limit, *extra_args]


@contextlib.contextmanager
def local_server(model: str, log_path: Path, *, seed: int = 0, max_candidates: int = 16,
                 extra_args: Sequence[str] = (), start_timeout_s: float = 900.0
                 ) -> Iterator[str]:
    """Serve `model`, yield its base URL once healthy, and stop it on the way out."""
    port = free_port()
    argv = serve_command(model, port, seed, max_candidates, extra_args)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"},
                                   start_new_session=True)
        logger.info("starting selfcritic serve --model %s on port %d (pid %d, log %s)",
                    model, port, process.pid, log_path)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(process, url, log_path, start_timeout_s)
            yield url
        finally:
            stop(process)


def _wait_healthy(process: subprocess.Popen, url: str, log_path: Path, timeout_s: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"selfcritic serve exited with {process.returncode}; "
                               f"last log lines:\n{_tail(log_path)}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                logger.info("server healthy after %.0f s", time.monotonic() - start)
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"selfcritic serve not healthy after {timeout_s:.0f} s; last log "
                       f"lines:\n{_tail(log_path)}")


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
