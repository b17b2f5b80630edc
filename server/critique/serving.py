"""`/v1/critique`: judge given responses with the model's pairwise judge, through the
lifecycle of `server.serving.base`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.critique import rank_responses
from critic_loop.engine import PromptTooLongError
from critic_loop.images import with_images
from critic_loop.judge_prompt import question_text
from critic_loop.prompts import count_text_tokens
from server.critique.protocol import CritiqueRequest
from server.edge.errors import bad_request
from server.load.admission import check_comparisons, critique_cost
from server.load.capacity import WorkCost
from server.media.images import ImageRef, chat_image_refs, placeholder_messages
from server.serving.base import EndpointServing
from server.serving.ids import created_now, engine_id
from server.serving.judge_fit import check_responses_fit, too_long
from server.serving.self_critic_config import CRITIQUE_BRACKET, JUDGE_FIELDS, server_config


@dataclass(frozen=True)
class PreparedCritique:
    question: str | list[dict[str, Any]]
    responses: list[str]
    config: SelfCriticConfig
    image_refs: tuple[ImageRef, ...] = ()
    """The request's images, checked but not yet loaded."""
    context: int | None = None
    """The model's context: no judgment is charged for more."""

    @property
    def cost(self) -> WorkCost:
        """Admission cost: the first round's judgments at once, and every judgment's work."""
        return critique_cost(len(question_text(self.question)),
                             [len(r) for r in self.responses], self.config, self.context)


class CritiqueServing(EndpointServing[CritiqueRequest, PreparedCritique, PreparedCritique]):
    id_prefix = "critique"

    def validate(self, request: CritiqueRequest) -> PreparedCritique:
        """The request checked against the model and the server's limits, and its judge's
        configuration; the judge is the same model under either name."""
        self.asks_self_critic(request.model)
        if request.has_images() and not self.engine.supports_images:
            raise bad_request(f"The model {self.engine.model_name!r} reads text only; it "
                              "cannot judge a question with images.",
                              param="images" if request.images else "messages",
                              code="images_not_supported")
        s = self.settings
        if len(request.responses) > s.max_candidates:
            raise bad_request(f"responses holds {len(request.responses)} items; this server "
                              f"ranks at most {s.max_candidates} (max_candidates).",
                              param="responses")
        check_comparisons(request.comparisons, s.max_comparisons, "comparisons")
        question, image_refs = _question_of(request)
        self.context.media.check(image_refs, "images" if request.images else "messages")
        asked = {"judge": request.judge, "comparisons": request.comparisons,
                 "judge_max_tokens": request.max_tokens,
                 "judge_temperature": request.temperature}
        config = server_config(s, asked, JUDGE_FIELDS, None, candidates=len(request.responses),
                               seed=request.seed, **CRITIQUE_BRACKET)
        return PreparedCritique(question, list(request.responses), config, tuple(image_refs),
                                self.engine.max_model_len)

    def estimated_cost(self, critique: PreparedCritique) -> WorkCost:
        return critique.cost

    def prepare(self, critique: PreparedCritique) -> PreparedCritique:
        """Check that the two longest responses fit one judge prompt."""
        self._check_judge_budget(critique.question, critique)
        return critique

    def image_refs(self, critique: PreparedCritique) -> tuple[ImageRef, ...]:
        return critique.image_refs

    def with_images(self, critique: PreparedCritique, images: list[Any]) -> PreparedCritique:
        """The question's images in place, and the two responses checked again beside them."""
        question = with_images(list(critique.question), images)
        self._check_judge_budget(question, critique)
        return replace(critique, question=question)

    def _check_judge_budget(self, question: str | list[dict[str, Any]],
                            critique: PreparedCritique) -> None:
        budget = self.judge_budget(question, critique.config,
                                   "question" if isinstance(question, str) else "messages")
        try:
            longest = sorted(count_text_tokens(self.engine, critique.responses))[-2:]
        except PromptTooLongError as exc:
            raise too_long(exc, "responses") from exc
        check_responses_fit(budget, critique.config, longest)

    async def respond(self, critique: PreparedCritique, request_id: str) -> dict[str, Any]:
        result = await rank_responses(self.engine, critique.question, critique.responses,
                                      critique.config, engine_id(request_id))
        self.metrics.record_self_critic(result.report)
        return {"id": self.answer_id(request_id), "object": "critique",
                "created": created_now(), "model": self.engine.model_name,
                "judge": critique.config.mode.value,
                "comparisons": critique.config.comparisons,
                **result.to_dict()}


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
