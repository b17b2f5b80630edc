"""Run the app under uvicorn: graceful drain on SIGTERM, non-zero exit if the engine dies.

On SIGTERM uvicorn stops accepting connections, lets in-flight requests finish for up to
`shutdown_drain_s` (0: not at all), then cancels them (which aborts their engine
requests), and the lifespan shuts the engine down. Whatever processes the engine leaves
behind are stopped before we exit, so the whole process tree goes.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import socket
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from server.app import create_app
from server.edge.auth import APIKeyChecker, check_exposure
from server.settings import ServerSettings

logger = logging.getLogger(__name__)

EXIT_ENGINE_DIED = 3
EXIT_STARTUP_FAILED = 1
EXIT_BAD_CONFIG = 2
_PR_SET_CHILD_SUBREAPER = 36


class _DrainingServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown, so the process would die "by
    signal"; after a completed drain we exit with code 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if self._captured_signals:
                    logger.info("Drained and stopped after signal %s", self._captured_signals)
                self._captured_signals.clear()


def uvicorn_config(app: ASGIApp, settings: ServerSettings) -> uvicorn.Config:
    """Forwarded headers only from `--forwarded-allow-ips` (none: uvicorn's proxy
    middleware is off and the client address is the peer's)."""
    proxies = settings.forwarded_allow_ips
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False,
        # uvicorn waits forever when this is None; 0 must mean "abort at once".
        timeout_graceful_shutdown=settings.shutdown_drain_s,  # type: ignore[arg-type]
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None)


def serve(settings: ServerSettings) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    try:
        check_exposure(settings, APIKeyChecker.from_settings(settings))
    except ValueError as exc:  # no key on a public address, or an unreadable key file
        logger.error("%s", exc)
        return EXIT_BAD_CONFIG
    outcome = {"code": 0}
    server: _DrainingServer | None = None

    def on_engine_death() -> None:
        outcome["code"] = EXIT_ENGINE_DIED
        if server is not None:
            server.should_exit = True

    try:
        listener = bind_listener(settings.host, settings.port)
    except OSError as exc:  # a busy port fails now, not after the model has loaded
        logger.error("Cannot listen on %s port %d: %s", settings.host, settings.port, exc)
        return EXIT_BAD_CONFIG
    logger.info("Bound %s; the engine starts next", _address(listener))
    _adopt_orphans()
    server = _DrainingServer(uvicorn_config(create_app(settings, on_engine_death=on_engine_death),
                                            settings))
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
        stop_leftover_processes()
    if not server.started:
        logger.error("The server did not start (see the errors above)")
        return EXIT_STARTUP_FAILED
    if outcome["code"]:
        logger.error("Exiting with code %d because the engine died", outcome["code"])
    return outcome["code"]


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound and listening before the engine starts: nothing else
    can take the port during the minute a model takes to load (vLLM's own server binds
    early too), and port 0 takes a free one (logged). A client that connects meanwhile
    waits in the backlog and is answered once the app has started. Not inheritable, so
    the engine's processes do not hold the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)  # uvicorn's default backlog
    except OSError:
        listener.close()
        raise
    return listener


def _address(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://[{host}]:{port}" if listener.family == socket.AF_INET6 else \
        f"http://{host}:{port}"


def _adopt_orphans() -> None:
    """On Linux, become a child subreaper: a process that vLLM's engine core starts and
    then leaves behind (its worker) is re-parented to us rather than to init, so
    `stop_leftover_processes` still finds it."""
    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        logger.debug("prctl(PR_SET_CHILD_SUBREAPER) is unavailable")


def stop_leftover_processes(parent_pid: int | None = None, grace_s: float = 5.0) -> list[str]:
    """Stop every process still below this one (or `parent_pid`) once the engine is
    closed: SIGTERM, then SIGKILL after `grace_s`. multiprocessing's resource tracker is
    spared: it releases what the others left and exits by itself when they and we are
    gone. Returns the names of those stopped (normally none)."""
    try:
        import psutil
    except ImportError:  # comes with vLLM; without it there is no engine process either
        return []
    leftovers = [p for p in psutil.Process(parent_pid).children(recursive=True)
                 if _is_running(p) and not _is_resource_tracker(p)]
    names = []
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            names.append(f"{process.name()} (pid {process.pid})")
            process.terminate()
    if not leftovers:
        return []
    logger.warning("Stopping processes the engine left running: %s", ", ".join(names))
    _, alive = psutil.wait_procs(leftovers, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    return names


def _is_running(process: Any) -> bool:
    """Not a zombie: vLLM has already killed its engine core by then, unreaped."""
    try:
        return process.status() != "zombie"
    except Exception:
        return False


def _is_resource_tracker(process: Any) -> bool:
    try:
        return "multiprocessing.resource_tracker" in " ".join(process.cmdline())
    except Exception:  # gone, or not ours to inspect
        return False
