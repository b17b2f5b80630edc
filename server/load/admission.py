"""Admission control: charge each request for all its work, and refuse at once (429 with
`Retry-After`) what the engine cannot finish before the deadline (see server/load/capacity.py).

A plain request costs `n` sequences of `max_tokens`; a self-critic request its candidates,
the largest batch of judgments in flight at once, and every judgment's prompt and budget; a
critique its judgments. `max_inflight_sequences` stays a hard ceiling: a request that alone
exceeds it is a 400.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from critic_loop.config import SelfCriticConfig
from critic_loop.pairwise import judgment_tokens
from server.edge.errors import APIError, bad_request
from server.load.capacity import Capacity, Decision, WorkCost, work_tokens
from server.settings import ServerSettings

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4.0
"""Prompt lengths are estimated from characters: admission never tokenises."""
JUDGE_OVERHEAD_TOKENS = 160.0
"""The judge prompt's instruction and template around the question and responses."""


def chat_cost(prompt_chars: int, n: int, max_tokens: int,
              critic: SelfCriticConfig | None, context: int | None = None) -> WorkCost:
    """A chat request's cost: `n` samples, or the candidates plus every judgment (whose
    prompt holds the question and two candidates of up to `max_tokens`). No prompt is
    charged for more than the `context` can hold: a longer one is a 400 once measured, and
    charging its length would refuse it with a 429 that no retry can cure."""
    prompt = _within(prompt_chars / CHARS_PER_TOKEN, context)
    max_tokens = int(_within(max_tokens, context))
    if critic is None:
        return WorkCost(n, work_tokens(prompt, max_tokens, n))
    candidates = work_tokens(prompt, max_tokens, critic.candidates)
    judging = _judging(critic, _within(prompt + 2 * max_tokens, context))
    return WorkCost(critic.peak_sequences, candidates + judging)


def critique_cost(question_chars: int, response_chars: Sequence[int],
                  config: SelfCriticConfig, context: int | None = None) -> WorkCost:
    """A critique's cost: its judgments, each holding the question and two responses
    (together no more than the `context` holds)."""
    mean = sum(response_chars) / max(1, len(response_chars)) / CHARS_PER_TOKEN
    judging = _judging(config, _within(question_chars / CHARS_PER_TOKEN + 2 * mean, context))
    return WorkCost(max(1, config.peak_judge_sequences), judging)


def _within(tokens: float, context: int | None) -> float:
    return tokens if context is None else min(tokens, float(context))


def _judging(config: SelfCriticConfig, content_tokens: float) -> float:
    return work_tokens(JUDGE_OVERHEAD_TOKENS + content_tokens, judgment_tokens(config),
                       config.judge_generations)


def check_comparisons(comparisons: int | None, cap: int, param: str) -> None:
    """A 400 for more judgments per match than the server allows (None: the default)."""
    if comparisons is not None and comparisons > cap:
        raise bad_request(f"{param} must be at most {cap} (max_comparisons), got "
                          f"{comparisons}.", param=param)


class Overloaded(APIError):
    """A 429 with the reason it was refused ('capacity' or 'deadline'), for the metrics."""

    def __init__(self, message: str, reason: str, retry_after_s: int,
                 retry_after_ms: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after_s)}
        if retry_after_ms:
            headers["Retry-After-Ms"] = str(retry_after_ms)
        super().__init__(429, message, code="overloaded", headers=headers)
        self.reason = reason


class AdmissionController:
    """Holds each admitted request's cost until it ends; refuses what does not fit."""

    def __init__(self, capacity: Capacity,
                 queue_delay: Callable[[], float | None] | None = None) -> None:
        self.capacity = capacity
        self.queue_delay = queue_delay
        """Polled before each decision: the engine's smallest recent queueing delay."""

    @classmethod
    def from_settings(cls, settings: ServerSettings,
                      queue_delay: Callable[[], float | None] | None = None
                      ) -> AdmissionController:
        return cls(Capacity(max_sequences=settings.max_inflight_sequences,
                            deadline_s=settings.request_timeout_s,
                            queue_target_s=settings.admission_queue_target_s), queue_delay)

    def acquire(self, cost: WorkCost) -> Callable[[], None]:
        """Take `cost`; return the (idempotent) function that gives it back."""
        capacity = self.capacity
        if cost.sequences > capacity.max_sequences:
            raise APIError(400, f"This request needs {cost.sequences} sequences at once (n, or "
                           "self-critic candidates or their first round of judgments) but the "
                           f"server admits at most {capacity.max_sequences}; lower n, "
                           "candidates or comparisons.",
                           param="n", code="too_many_sequences")
        if self.queue_delay is not None and (delay := self.queue_delay()) is not None:
            capacity.record_queue_delay(delay)
        self.refuse_unless(capacity.decide(cost), cost)
        capacity.start(cost)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                capacity.finish(cost)

        return release

    def refuse_unless(self, decision: Decision, cost: WorkCost) -> None:
        """Raise the 429 that explains a refusal; nothing for an admission."""
        if decision.admitted:
            return
        capacity = self.capacity
        if decision.reason == "capacity":
            why = (f"{capacity.in_flight_sequences} of its {capacity.limit} sequences "
                   f"are in flight and this request needs {cost.sequences}")
        else:
            why = (f"by the measured throughput (~{capacity.tokens_per_s:.0f} tokens/s) "
                   f"it would finish in ~{decision.predicted_s:.0f} s, past its "
                   f"{capacity.budget_s:.0f} s share of the deadline")
        raise Overloaded(f"The server is at capacity: {why}. Retry after "
                         f"{decision.retry_after_s} s.", decision.reason,
                         decision.retry_after_s, decision.retry_after_ms)
