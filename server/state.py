"""What the routes share, built once per app by `create_app` (no module singletons)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from critic_loop.engine import Engine
from critic_loop.generation_defaults import NO_DEFAULTS, GenerationDefaults
from server.chat.serving import ChatServing
from server.completions.serving import CompletionServing
from server.critique.serving import CritiqueServing
from server.edge.auth import APIKeyChecker
from server.load.admission import AdmissionController
from server.load.engine_stall import EngineHealth
from server.load.metrics import Metrics
from server.settings import ServerSettings


@dataclass
class AppState:
    settings: ServerSettings
    engine: Engine
    metrics: Metrics
    admission: AdmissionController
    auth: APIKeyChecker
    health: EngineHealth
    chat: ChatServing
    completions: CompletionServing
    critique: CritiqueServing
    sampling_defaults: GenerationDefaults = NO_DEFAULTS
    """The served model's sampling defaults (`--generation-config`)."""


# The dependency is `async def` on purpose: FastAPI runs a plain `def` dependency in its
# thread pool, and a thread hop per request costs a refusal under load more than the
# rest of its handling (each hop waits for a core the engine keeps busy). The API key is
# checked once, on the headers, by `server.edge.middleware`, before any route runs.
async def get_state(request: Request) -> AppState:
    return request.app.state.selfcritic


State = Annotated[AppState, Depends(get_state)]
