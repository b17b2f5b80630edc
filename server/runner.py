"""Run the app under uvicorn: graceful drain on SIGTERM, non-zero exit if the engine dies.

On SIGTERM uvicorn stops accepting connections, lets in-flight requests finish for up to
`shutdown_drain_s`, then cancels them (which aborts their engine requests), and the
lifespan shuts the engine down.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from server.app import create_app
from server.settings import ServerSettings

logger = logging.getLogger(__name__)

EXIT_ENGINE_DIED = 3
EXIT_STARTUP_FAILED = 1


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


def serve(settings: ServerSettings) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    outcome = {"code": 0}
    server: _DrainingServer | None = None

    def on_engine_death() -> None:
        outcome["code"] = EXIT_ENGINE_DIED
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_engine_death=on_engine_death)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_drain_s) or None,
        proxy_headers=True, forwarded_allow_ips="*", access_log=False)
    server = _DrainingServer(config)
    server.run()
    if not server.started:
        logger.error("The server did not start (see the errors above)")
        return EXIT_STARTUP_FAILED
    if outcome["code"]:
        logger.error("Exiting with code %d because the engine died", outcome["code"])
    return outcome["code"]
