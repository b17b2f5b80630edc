"""The app factory: `create_app(settings, engine=None)`.

With no engine given, the lifespan starts vLLM on the configured model, warms it up,
watches it, and always shuts it down. Tests pass their own (scripted) engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from critic_loop.engine import Engine
from server import __version__
from server.admission import AdmissionController
from server.auth import APIKeyChecker
from server.errors import install_error_handlers
from server.metrics import Metrics
from server.model_defaults import with_model_defaults
from server.request_context import RequestContextMiddleware
from server.routes import chat, critique, meta
from server.serving.chat import ChatService
from server.serving.critique import CritiqueService
from server.settings import ServerSettings
from server.state import AppState

logger = logging.getLogger(__name__)


def start_vllm_engine(settings: ServerSettings) -> tuple[Engine, ServerSettings]:
    """Resolve the model (building the default once) and start vLLM on it; return the
    engine and the settings with the model's own serving defaults applied."""
    from critic_loop.engines.vllm_async import EngineConfig, VLLMEngine
    from critic_loop.model_store import resolve_model

    model = resolve_model(settings.model, served_name=settings.served_model_name)
    settings = with_model_defaults(settings, model.path)
    return VLLMEngine.start(EngineConfig(
        model=str(model.path), served_name=model.served_name,
        max_model_len=settings.max_model_len, dtype=settings.dtype,
        enforce_eager=settings.enforce_eager, seed=settings.seed,
        max_num_seqs=settings.max_num_seqs,
        gpu_memory_utilization=settings.gpu_memory_utilization)), settings


def create_app(settings: ServerSettings, engine: Engine | None = None,
               on_engine_death: Callable[[], None] | None = None) -> FastAPI:
    """Build the app. `on_engine_death` is called once if the engine stops serving
    (the CLI uses it to exit non-zero so an orchestrator restarts the process)."""
    metrics = Metrics.create()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        the_engine, served = engine, settings
        if the_engine is None:
            the_engine, served = start_vllm_engine(settings)
            warm_up = getattr(the_engine, "warm_up", None)
            if warm_up is not None:
                logger.info("Warming the engine up")
                await warm_up()
        state = AppState(
            settings=served, engine=the_engine, metrics=metrics,
            admission=AdmissionController(served.max_inflight_sequences),
            auth=APIKeyChecker(served.api_key),
            chat=ChatService(the_engine, served, metrics),
            critique=CritiqueService(the_engine, served, metrics))
        app.state.selfcritic = state
        watchdog = asyncio.create_task(_watch_engine(state, on_engine_death))
        logger.info("Serving %s", the_engine.model_name)
        try:
            yield
        finally:
            watchdog.cancel()
            logger.info("Shutting the engine down")
            await the_engine.close()

    app = FastAPI(title="selfcritic", version=__version__, lifespan=lifespan,
                  root_path=settings.root_path,
                  description="OpenAI-compatible chat completions with test-time self-critic.")
    install_error_handlers(app)
    for router in (chat.router, critique.router, meta.router):
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["X-Request-Id"])
    app.add_middleware(RequestContextMiddleware, metrics=metrics,
                       max_body_bytes=settings.max_body_bytes)
    return app


async def _watch_engine(state: AppState, on_death: Callable[[], None] | None,
                        interval_s: float = 1.0) -> None:
    while True:
        await asyncio.sleep(interval_s)
        if not await state.engine.is_healthy():
            state.engine_dead = True
            logger.error("The engine stopped serving; /health now answers 503")
            if on_death is not None:
                on_death()
            return
