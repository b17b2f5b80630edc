"""`/v1/critique`: judge given responses with the model's pairwise judge."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.critique import rank_responses
from critic_loop.engine import Engine
from critic_loop.judge_budget import judge_budget
from critic_loop.judge_prompt import JudgeMode
from server.errors import APIError, bad_request
from server.metrics import Metrics
from server.protocol.critique import CritiqueRequest
from server.serving.chat import SELF_CRITIC_SUFFIX
from server.settings import ServerSettings


@dataclass(frozen=True)
class PreparedCritique:
    question: str | list[dict[str, Any]]
    responses: list[str]
    config: SelfCriticConfig

    @property
    def sequences(self) -> int:
        """Admission cost: the first round's judgments, all in flight at once."""
        return max(1, self.config.peak_judge_sequences)


class CritiqueService:
    def __init__(self, engine: Engine, settings: ServerSettings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics

    def prepare(self, request: CritiqueRequest) -> PreparedCritique:
        base = self.engine.model_name
        if request.model not in (None, base, base + SELF_CRITIC_SUFFIX):
            raise APIError(404, f"The model {request.model!r} does not exist. This server "
                           f"serves {base!r}.", param="model", code="model_not_found")
        if request.has_images() and not self.engine.supports_images:
            raise bad_request(f"The model {base!r} reads text only; it cannot judge a "
                              "question with image_url parts.", param="messages",
                              code="images_not_supported")
        cap = self.settings.max_candidates
        if len(request.responses) > cap:
            raise bad_request(f"responses holds {len(request.responses)} items; this server "
                              f"ranks at most {cap} (max_candidates).", param="responses")
        s = self.settings
        question: str | list[dict[str, Any]] = (
            request.question if request.question is not None
            else [m.as_text_dict() for m in request.messages or []])
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
        self._check_judge_budget(question, list(request.responses), config)
        return PreparedCritique(question, list(request.responses), config)

    def _check_judge_budget(self, question: str | list[dict[str, Any]], responses: list[str],
                            config: SelfCriticConfig) -> None:
        """A 400 when the two longest responses cannot share one judge prompt (a judgment
        that cannot be sent would otherwise count as an invalid vote)."""
        budget = judge_budget(self.engine, question, config.mode, config.judge_max_tokens)
        longest = sorted(self.engine.count_tokens(r) for r in responses)[-2:]
        if sum(longest) <= 2 * budget.per_response:
            return
        room = 2 * budget.per_response
        raise APIError(400, f"The two longest responses take {sum(longest)} tokens; with the "
                       f"question, the instruction ({budget.overhead} tokens) and the judge's "
                       f"answer ({budget.judge_tokens}) only {max(room, 0)} fit the model's "
                       f"context of {budget.context}. Shorten the responses"
                       f"{' or lower max_tokens' if config.mode is JudgeMode.REASON else ''}.",
                       param="responses", code="context_length_exceeded")

    async def run(self, critique: PreparedCritique, request_id: str) -> dict[str, Any]:
        result = await rank_responses(self.engine, critique.question, critique.responses,
                                      critique.config, f"{request_id}-{uuid.uuid4().hex[:8]}")
        self.metrics.record_self_critic(result.report)
        return {"id": f"critique-{request_id}", "object": "critique",
                "created": int(time.time()), "model": self.engine.model_name,
                "judge": critique.config.mode.value,
                "comparisons": critique.config.comparisons,
                **result.to_dict()}
