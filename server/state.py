"""What the routes share, built once per app by `create_app` (no module singletons)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from critic_loop.engine import Engine
from critic_loop.generation_defaults import NO_DEFAULTS, GenerationDefaults
from server.chat.serving import ChatService
from server.critique.serving import CritiqueService
from server.edge.auth import APIKeyChecker
from server.edge.errors import APIError
from server.load.admission import AdmissionController
from server.load.capacity import WorkCost
from server.load.engine_stall import StallDetector
from server.load.metrics import Metrics
from server.settings import ServerSettings

T = TypeVar("T")


@dataclass
class AppState:
    settings: ServerSettings
    engine: Engine
    metrics: Metrics
    admission: AdmissionController
    auth: APIKeyChecker
    chat: ChatService
    critique: CritiqueService
    engine_dead: bool = field(default=False)
    stall: StallDetector | None = None
    sampling_defaults: GenerationDefaults = NO_DEFAULTS
    """The served model's sampling defaults (`--generation-config`)."""

    async def serving(self) -> bool:
        """Whether the engine can take work now."""
        if self.engine_dead or (self.stall is not None and self.stall.stalled()):
            return False
        return await self.engine.is_healthy()

    async def precheck(self) -> None:
        """Before any templating: 503 when the engine is down, 429 when nothing could be
        admitted now."""
        await self._check_serving()
        self._counted(self.admission.precheck)

    async def admit(self, cost: WorkCost) -> Callable[[], None]:
        """Admission for `cost`: 503 when the engine is down, 429 when it cannot take it;
        returns the function that releases it."""
        await self._check_serving()
        return self._counted(lambda: self.admission.acquire(cost))

    async def _check_serving(self) -> None:
        if not await self.serving():
            self.metrics.rejections.labels("engine_unavailable").inc()
            raise APIError(503, "The engine is not available; retry later.",
                           code="engine_unavailable", headers={"Retry-After": "5"})

    def _counted(self, decide: Callable[[], T]) -> T:
        """Run an admission decision, counting a refusal by its reason."""
        try:
            return decide()
        except APIError as exc:
            self.metrics.rejections.labels(getattr(exc, "reason", "capacity")
                                           if exc.status == 429 else "too_large").inc()
            raise


# The dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in its
# thread pool, and two thread hops per request cost a refusal under load more than the
# rest of its handling (each hop waits for a core the engine keeps busy).
async def get_state(request: Request) -> AppState:
    return request.app.state.selfcritic


async def require_api_key(request: Request) -> None:
    request.app.state.selfcritic.auth.check(request)


async def require_api_key_for_ops(request: Request) -> None:
    state: AppState = request.app.state.selfcritic
    if state.settings.protect_health:
        state.auth.check(request)


State = Annotated[AppState, Depends(get_state)]
Authorized = Depends(require_api_key)
OpsAuthorized = Depends(require_api_key_for_ops)
