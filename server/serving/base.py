"""The endpoint base, as vLLM's `OpenAIServing`: every POST endpoint runs one lifecycle,
in one order, and what every endpoint needs (the model check, ids, the judge's budget,
image loading) is here once. A router makes one call, `handle`.

1. validate, on the event loop and cheap: the model name, limits, options; nothing
   templated, tokenised or fetched;
2. admit on an estimate (503 while the engine is down, 429 when it cannot take the work),
   before any templating, so that a refusal under overload costs no worker-thread hop;
3. prepare in a worker thread: templating, tokenising, budgets;
4. fetch the images, then size the budgets again beside them (in a worker thread);
5. run under cancellation (a client that leaves aborts the engine work) and the deadline;
6. release the admission on every exit: an error, a disconnect, the stream's end.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from starlette.requests import Request

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Engine, Message, has_judge_adapter
from critic_loop.generation_defaults import NO_DEFAULTS, GenerationDefaults
from critic_loop.judge_budget import JudgeBudget
from server.edge.sse import event_stream
from server.load.cancellation import run_cancellable
from server.load.capacity import WorkCost
from server.load.gate import AdmissionGate
from server.load.metrics import Metrics
from server.media.images import ImageRef, MediaPolicy
from server.serving.judge_fit import measured_budget
from server.serving.served_model import adapter_for, asks_self_critic
from server.settings import ServerSettings

BodyT = TypeVar("BodyT")
PlanT = TypeVar("PlanT")
PreparedT = TypeVar("PreparedT")


@dataclass(frozen=True)
class ServingContext:
    """What every endpoint serves with, built once per app."""

    engine: Engine
    settings: ServerSettings
    metrics: Metrics
    gate: AdmissionGate
    media: MediaPolicy
    defaults: GenerationDefaults = NO_DEFAULTS
    """The served model's sampling defaults (`--generation-config`), never the judge's."""


class EndpointServing(ABC, Generic[BodyT, PlanT, PreparedT]):
    """One endpoint: the request body `BodyT`, validated into a `PlanT` (what admission
    charges), prepared into a `PreparedT` (what the engine runs)."""

    id_prefix: ClassVar[str]
    """The answer's id is `{id_prefix}-{request id}`."""
    plain_only_at: ClassVar[str | None] = None
    """The path of an endpoint that serves the plain model only (not its alias)."""

    def __init__(self, context: ServingContext) -> None:
        self.context = context
        self.engine = context.engine
        self.settings = context.settings
        self.metrics = context.metrics

    async def handle(self, body: BodyT, request: Request) -> Any:
        """The whole lifecycle of one request (see the module docstring)."""
        plan = self.validate(body)
        release = await self.context.gate.admit(self.estimated_cost(plan))
        streamed = False
        try:
            prepared = await asyncio.to_thread(self.prepare, plan)
            prepared = await self._with_images(prepared)
            request_id = request.state.request_id
            timeout_s = self.settings.request_timeout_s
            if self.streams(prepared):
                streamed = True  # the stream releases when it ends, however it ends
                return event_stream(self.stream(prepared, request_id), release, timeout_s)
            return await run_cancellable(request, self.respond(prepared, request_id),
                                         timeout_s)
        finally:
            if not streamed:
                release()

    # -- the steps each endpoint fills in -------------------------------------------------
    @abstractmethod
    def validate(self, body: BodyT) -> PlanT:
        """Step 1: cheap checks on the event loop; raises the 4xx for bad input."""

    @abstractmethod
    def estimated_cost(self, plan: PlanT) -> WorkCost:
        """Step 2: what admission charges, from the plan alone (nothing tokenised)."""

    @abstractmethod
    def prepare(self, plan: PlanT) -> PreparedT:
        """Step 3, in a worker thread: templating, tokenising, budgets."""

    def image_refs(self, prepared: PreparedT) -> Sequence[ImageRef]:
        """Step 4: the images to fetch (none by default)."""
        return ()

    def with_images(self, prepared: PreparedT, images: list[Any]) -> PreparedT:
        """Step 4, in a worker thread: the fetched images in place, budgets checked again."""
        return prepared

    def streams(self, prepared: PreparedT) -> bool:
        return False

    @abstractmethod
    async def respond(self, prepared: PreparedT, request_id: str) -> dict[str, Any]:
        """Step 5: the whole answer."""

    def stream(self, prepared: PreparedT, request_id: str) -> AsyncIterator[str]:
        """Step 5, streamed: SSE events, `[DONE]` last."""
        raise NotImplementedError

    # -- what the endpoints share ---------------------------------------------------------
    def asks_self_critic(self, name: str | None) -> bool:
        """Whether `name` is the self-critic alias; a 404 unless it is a name served here."""
        return asks_self_critic(name, self.engine.model_name, self.plain_only_at,
                                has_judge_adapter(self.engine))

    def adapter_for(self, name: str | None) -> str | None:
        """The adapter a plain request for `name` runs with (`MODEL:judge`: the judge's)."""
        return adapter_for(name, self.engine.model_name, has_judge_adapter(self.engine))

    def answer_id(self, request_id: str) -> str:
        return f"{self.id_prefix}-{request_id}"

    def judge_budget(self, question: str | Sequence[Message], config: SelfCriticConfig,
                     param: str) -> JudgeBudget:
        """The judge prompt's arithmetic for `question` (blocking: a worker thread)."""
        return measured_budget(self.engine, question, config, param)

    async def _with_images(self, prepared: PreparedT) -> PreparedT:
        refs = self.image_refs(prepared)
        if not refs:
            return prepared
        images = await self.context.media.load(refs)
        # the processor measures the images: off the event loop
        return await asyncio.to_thread(self.with_images, prepared, images)
