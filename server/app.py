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

from critic_loop.code.grader import CodeGrader
from critic_loop.code.sandbox import Sandbox
from critic_loop.engine import Engine
from server import __version__
from server.chat import api_router as chat
from server.chat.serving import ChatServing
from server.completions import api_router as completions
from server.completions.serving import CompletionServing
from server.critique import api_router as critique
from server.critique.serving import CritiqueServing
from server.edge.auth import APIKeyChecker
from server.edge.errors import install_error_handlers
from server.edge.middleware import RequestContextMiddleware
from server.exec_grouping import start_code_grader
from server.gc_heap import freeze_startup_heap
from server.load.admission import AdmissionController
from server.load.engine_stall import EngineHealth, StallDetector
from server.load.gate import AdmissionGate
from server.load.metrics import Metrics
from server.load.queue_probe import QueueDelayProbe
from server.media.images import MediaPolicy
from server.meta import api_router as meta
from server.model_defaults import sampling_defaults, with_model_defaults
from server.serving.base import ServingContext
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
        gpu_memory_utilization=settings.gpu_memory_utilization,
        generation_config=settings.generation_config,
        engine_args=tuple(settings.vllm_args))), settings


async def start_upstream_engine(settings: ServerSettings) -> Engine:
    """An engine over the `--upstream` servers; no model runs in this process. All calls
    of one HTTP request go to one upstream (keyed by the request id)."""
    from critic_loop.engines.upstream import UpstreamConfig, UpstreamEngine
    from server.edge.middleware import request_id_var

    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every upstream call
    if settings.vllm_args:
        logger.warning("--upstream: no engine runs here, so the vLLM engine arguments "
                       "%s are ignored", " ".join(settings.vllm_args))
    return await UpstreamEngine.connect(UpstreamConfig(
        urls=tuple(settings.upstream), api_keys=tuple(settings.upstream_api_key),
        model=settings.served_model_name, tokenizer=settings.upstream_tokenizer,
        max_model_len=settings.max_model_len, request_timeout_s=settings.request_timeout_s),
        session_key=request_id_var.get)


def create_app(settings: ServerSettings, engine: Engine | None = None,
               on_engine_death: Callable[[], None] | None = None,
               sandbox: Sandbox | None = None) -> FastAPI:
    """Build the app. `on_engine_death` is called once if the engine stops serving
    (the CLI uses it to exit non-zero so an orchestrator restarts the process).
    `sandbox` replaces the one `--exec-grouping` builds from the settings."""
    metrics = Metrics.create()
    auth = APIKeyChecker.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        the_engine, served = engine, settings
        grader: CodeGrader | None = None
        if settings.exec_grouping:  # before the engine: a refusal costs no model load
            grader = await asyncio.to_thread(start_code_grader, settings, sandbox)
        if the_engine is None and settings.upstream:
            the_engine = await start_upstream_engine(settings)
        if the_engine is None:
            the_engine, served = start_vllm_engine(settings)
            warm_up = getattr(the_engine, "warm_up", None)
            if warm_up is not None:
                logger.info("Warming the engine up")
                await warm_up()
        defaults = sampling_defaults(served, getattr(the_engine, "model_dir", None))
        admission = AdmissionController.from_settings(served, QueueDelayProbe())
        health = EngineHealth(the_engine, StallDetector(the_engine, served.engine_stall_s))
        context = ServingContext(the_engine, served, metrics,
                                 AdmissionGate(admission, health.serving, metrics.rejections),
                                 MediaPolicy.from_settings(served), defaults)
        state = AppState(
            settings=served, engine=the_engine, metrics=metrics, admission=admission,
            auth=auth, health=health, chat=ChatServing(context, grader),
            completions=CompletionServing(context), critique=CritiqueServing(context),
            sampling_defaults=defaults)
        app.state.selfcritic = state
        metrics.bind_admission(state.admission.capacity)
        watchdog = asyncio.create_task(_watch_engine(state, on_engine_death))
        # Only a server of its own: tests pass an engine and share one process
        if engine is None and settings.freeze_gc_heap:
            freeze_startup_heap()
        logger.info("Serving %s", the_engine.model_name)
        try:
            yield
        finally:
            watchdog.cancel()
            logger.info("Shutting the engine down")
            await the_engine.close()
            if grader is not None:
                await asyncio.to_thread(grader.close)

    # No slash redirects: a redirect would answer before the API key is looked at.
    app = FastAPI(title="selfcritic", version=__version__, lifespan=lifespan,
                  root_path=settings.root_path, redirect_slashes=False,
                  description="OpenAI-compatible chat completions with test-time self-critic.")
    install_error_handlers(app)
    for router in (chat.router, completions.router, critique.router, meta.router):
        app.include_router(router)
    app.add_middleware(RequestContextMiddleware, metrics=metrics,
                       max_body_bytes=settings.max_body_bytes, auth=auth)
    if settings.cors_origins:  # outermost: preflights need no key, and 401s carry CORS
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["*"], allow_headers=["*"],
                           expose_headers=["X-Request-Id"])
    return app


async def _watch_engine(state: AppState, on_death: Callable[[], None] | None,
                        interval_s: float = 1.0) -> None:
    # An engine that heals itself (upstreams, probed back in) is never declared dead
    heals = getattr(state.engine, "self_healing", False)
    was_stalled = False
    while True:
        await asyncio.sleep(interval_s)
        if not heals and not await state.engine.is_healthy():
            state.health.dead = True
            logger.error("The engine stopped serving; /health now answers 503")
            if on_death is not None:
                on_death()
            return
        stalled = state.health.stalled()
        if stalled != was_stalled:
            if stalled:
                logger.error("The engine has made no progress on its requests for %g s; "
                             "/health answers 503 until it does", state.health.stall.stall_s)
            else:
                logger.info("The engine is making progress again")
            was_stalled = stalled
