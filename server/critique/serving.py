"""`/v1/critique`: judge given responses with the model's pairwise judge."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.context_length import CODE as CONTEXT_LENGTH_CODE
from critic_loop.critique import rank_responses
from critic_loop.engine import Engine, PromptTooLongError
from critic_loop.images import with_images
from critic_loop.judge_budget import JOIN_SLACK, judge_budget
from critic_loop.judge_prompt import JudgeMode, question_text
from critic_loop.prompts import count_text_tokens
from server.critique.protocol import CritiqueRequest
from server.edge.errors import APIError, bad_request, context_length_error
from server.load.admission import check_comparisons, critique_cost
from server.load.capacity import WorkCost
from server.load.metrics import Metrics
from server.media.images import ImageRef, MediaPolicy, chat_image_refs, placeholder_messages
from server.serving.served_model import asks_self_critic
from server.settings import ServerSettings


@dataclass(frozen=True)
class PreparedCritique:
    question: str | list[dict[str, Any]]
    responses: list[str]
    config: SelfCriticConfig
    image_refs: tuple[ImageRef, ...] = ()
    """The request's images, checked but not yet loaded (`CritiqueService.load_images`)."""
    context: int | None = None
    """The model's context: no judgment is charged for more."""

    @property
    def cost(self) -> WorkCost:
        """Admission cost: the first round's judgments at once, and every judgment's work."""
        return critique_cost(len(question_text(self.question)),
                             [len(r) for r in self.responses], self.config, self.context)


class CritiqueService:
    def __init__(self, engine: Engine, settings: ServerSettings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.media = MediaPolicy.from_settings(settings)

    def plan(self, request: CritiqueRequest) -> PreparedCritique:
        """The request checked against the model and the server's limits, and its judge's
        configuration: cheap (no templating, no tokenising, nothing fetched), so it runs on
        the event loop and the critique is admitted on its cost before any of that work."""
        base = self.engine.model_name
        if request.model is not None:  # the judge is the same model under either name
            asks_self_critic(request.model, base)
        if request.has_images() and not self.engine.supports_images:
            raise bad_request(f"The model {base!r} reads text only; it cannot judge a "
                              "question with images.",
                              param="images" if request.images else "messages",
                              code="images_not_supported")
        cap = self.settings.max_candidates
        if len(request.responses) > cap:
            raise bad_request(f"responses holds {len(request.responses)} items; this server "
                              f"ranks at most {cap} (max_candidates).", param="responses")
        s = self.settings
        check_comparisons(request.comparisons, s.max_comparisons, "comparisons")
        question, image_refs = _question_of(request)
        self.media.check(image_refs, "images" if request.images else "messages")
        try:
            config = SelfCriticConfig(
                candidates=len(request.responses),
                judge=request.judge or s.judge,
                comparisons=request.comparisons or s.comparisons,
                judge_max_tokens=request.max_tokens or s.judge_max_tokens,
                judge_temperature=(s.judge_temperature if request.temperature is None
                                   else request.temperature),
                seed=request.seed)
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        return PreparedCritique(question, list(request.responses), config, tuple(image_refs),
                                self.engine.max_model_len)

    def prepare(self, critique: PreparedCritique) -> PreparedCritique:
        """Check that the two longest responses fit one judge prompt. Blocking (it renders
        and tokenises): the route runs it in a worker thread, once admitted."""
        self._check_judge_budget(critique.question, critique.responses, critique.config)
        return critique

    async def load_images(self, critique: PreparedCritique) -> PreparedCritique:
        """Fetch and decode the question's images into place, then check again that two
        responses fit beside them (nothing to do without images)."""
        if not critique.image_refs:
            return critique
        images = await self.media.load(critique.image_refs)
        question = with_images(list(critique.question), images)
        await asyncio.to_thread(self._check_judge_budget, question, critique.responses,
                                critique.config)
        return replace(critique, question=question)

    def _check_judge_budget(self, question: str | list[dict[str, Any]], responses: list[str],
                            config: SelfCriticConfig) -> None:
        """A 400 when the two longest responses cannot share one judge prompt (a judgment
        that cannot be sent would otherwise count as an invalid vote). Blocking: it
        renders and tokenises, so it runs in a worker thread."""
        try:
            budget = judge_budget(self.engine, question, config.mode, config.judge_max_tokens)
        except PromptTooLongError as exc:  # by size alone, before tokenising
            raise _too_long(exc, "question" if isinstance(question, str) else "messages") \
                from exc
        try:
            longest = sorted(count_text_tokens(self.engine, responses))[-2:]
        except PromptTooLongError as exc:
            raise _too_long(exc, "responses") from exc
        if sum(longest) <= 2 * budget.per_response:
            return
        room = 2 * budget.per_response
        raise context_length_error(
            budget.context, budget.overhead + JOIN_SLACK + sum(longest), budget.judge_tokens,
            param="responses",
            advice=f"The two longest responses take {sum(longest)} tokens; with the question, "
                   f"the instruction ({budget.overhead} tokens) and the judge's answer "
                   f"({budget.judge_tokens}) only {max(room, 0)} fit. Shorten the responses"
                   f"{' or lower max_tokens' if config.mode is JudgeMode.REASON else ''}.")

    async def run(self, critique: PreparedCritique, request_id: str) -> dict[str, Any]:
        result = await rank_responses(self.engine, critique.question, critique.responses,
                                      critique.config, f"{request_id}-{uuid.uuid4().hex[:8]}")
        self.metrics.record_self_critic(result.report)
        return {"id": f"critique-{request_id}", "object": "critique",
                "created": int(time.time()), "model": self.engine.model_name,
                "judge": critique.config.mode.value,
                "comparisons": critique.config.comparisons,
                **result.to_dict()}


def _too_long(exc: PromptTooLongError, param: str) -> APIError:
    return APIError(400, str(exc), param=param, code=CONTEXT_LENGTH_CODE)


def _question_of(request: CritiqueRequest) -> tuple[str | list[dict[str, Any]], list[ImageRef]]:
    """What the judge reads (images as placeholders for now) and the images it names."""
    if request.question is None:
        messages = request.messages or []
        return placeholder_messages(messages), chat_image_refs(messages)
    if not request.images:
        return request.question, []
    parts = [{"type": "image"} for _ in request.images]
    question = [{"role": "user", "content": [*parts, {"type": "text", "text": request.question}]}]
    return question, [ImageRef(url, f"images[{k}]") for k, url in enumerate(request.images)]
