"""A fast simulated engine for statistical tests of the real self-critic code path.

It answers candidate requests with given texts and judge requests by a judge model given
as `P(prefer Response 1 | response 1, response 2)`, so thousands of knockouts run in
seconds while every prompt still goes through `judge_messages`, `render_chat`, the
engine call, `parse_verdict` / `probabilities_from_logprobs` and the bracket.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product

from critic_loop.engine import (
    Completion,
    GenerationRequest,
    GenerationResult,
    Message,
)

PreferFirst = Callable[[str, str], float]
"""The probability that the judge prefers Response 1, given the two response texts."""

_R1, _R2 = "[Response 1]\n", "[Response 2]\n"


def responses_in(prompt: str) -> tuple[str, str]:
    """The two response texts of a rendered judge prompt (texts without blank lines)."""
    one = prompt.index(_R1) + len(_R1)
    two = prompt.index(_R2) + len(_R2)
    # Response 2 ends at a blank line (reason mode's suffix), else at the end of the
    # user turn (fast mode): a rendered "\n<|assistant|>" or the end of the text
    ends = [i for i in (prompt.find("\n\n", two), prompt.find("\n<|", two)) if i >= 0]
    return prompt[one:prompt.index("\n\n", one)], prompt[two:min(ends, default=None)]


def quality_judge(best: str, p: float) -> PreferFirst:
    """Prefers `best` with probability p in either position; a coin between the others."""
    def prefer_first(first: str, second: str) -> float:
        if first == best:
            return p
        return 1 - p if second == best else 0.5
    return prefer_first


def biased_judge(best: str, bias: float, preference: float) -> PreferFirst:
    """logit P(Response 1) = bias + preference when `best` is shown first, bias −
    preference when it is second, bias otherwise: a position prior on a content signal."""
    def prefer_first(first: str, second: str) -> float:
        content = preference if first == best else -preference if second == best else 0.0
        return 1 / (1 + math.exp(-(bias + content)))
    return prefer_first


def position_judge(b: float) -> PreferFirst:
    """Prefers whichever response is shown first with probability b, whatever it says."""
    return lambda first, second: b


@dataclass
class SimulatedEngine:
    """An `Engine` for simulations: no tokenizer, no sleeping, one word one token."""

    prefer_first: PreferFirst
    rng: random.Random
    candidates: Sequence[str] = ()
    invalid_rate: float = 0.0
    """Chance that a judgment is unreadable (garbage text, no choice logprobs)."""
    soft: bool = False
    """Fast judgments report `prefer_first` itself as the digits' probabilities and pick
    the likelier digit, as a greedy judge reading its distribution does (else a sampled
    digit with all its probability)."""
    model_name: str = "simulated"
    max_model_len: int = 1 << 20
    supports_images: bool = False
    generate_calls: list[list[GenerationRequest]] = field(default_factory=list)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.generate_calls.append(list(requests))
        return [self._answer(r) for r in requests]

    def render_chat(self, messages: Sequence[Message]) -> str:
        return str(messages[-1]["content"])

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def is_healthy(self) -> bool:
        return True

    async def abort(self, request_ids: Sequence[str]) -> None:
        return None

    async def close(self) -> None:
        return None

    def stream(self, request: GenerationRequest):  # pragma: no cover - not simulated
        raise NotImplementedError

    def _answer(self, request: GenerationRequest) -> GenerationResult:
        if _R1 not in request.prompt:
            completions = tuple(Completion(i, self.candidates[i], 1, "stop")
                                for i in range(request.n))
            return GenerationResult(request.request_id, 1, completions)
        first, second = responses_in(request.prompt)
        invalid = self.rng.random() < self.invalid_rate
        p_first = self.prefer_first(first, second)
        digit = "1" if self.rng.random() < p_first else "2"
        if request.sampling.choices:
            if self.soft:
                digit = "1" if p_first >= 0.5 else "2"
                logprobs = {"1": math.log(p_first), "2": math.log1p(-p_first)}
            else:
                logprobs = {c: 0.0 if c == digit else -math.inf for c in request.sampling.choices}
            completion = Completion(0, "?" if invalid else digit, 1, "length",
                                    choice_logprobs=None if invalid else logprobs)
        else:
            answer = "no idea" if invalid else f"\\boxed{{{digit}}}"
            text = f"<think>hmm</think> {answer}"
            completion = Completion(0, text, 4, "stop")
        return GenerationResult(request.request_id, 10, (completion,))


def match_win_probability(k: int, p: float, invalid_rate: float, tie_win: float) -> float:
    """Exact chance that the better candidate wins a match of k judgments.

    Each judgment is invalid with `invalid_rate`, else correct with p. The majority of valid
    votes wins; a tie (all-invalid included) is won with probability `tie_win`.
    """
    correct, wrong, invalid = (1 - invalid_rate) * p, (1 - invalid_rate) * (1 - p), invalid_rate
    win = 0.0
    for n_correct, n_wrong in product(range(k + 1), repeat=2):
        n_invalid = k - n_correct - n_wrong
        if n_invalid < 0:
            continue
        ways = math.comb(k, n_correct) * math.comb(k - n_correct, n_wrong)
        chance = ways * correct**n_correct * wrong**n_wrong * invalid**n_invalid
        if n_correct > n_wrong:
            win += chance
        elif n_correct == n_wrong:
            win += chance * tie_win
    return win


def knockout_win_probability(n: int, match_win: float) -> float:
    """Exact chance that the best of n distinct candidates wins the seeded knockout.

    Each round with m slots: if m is odd one uniformly drawn slot gets a bye, so the best
    candidate skips the round with probability 1/m; otherwise it must win its match.
    """
    win, slots = 1.0, n
    while slots > 1:
        bye = 1 / slots if slots % 2 else 0.0
        win *= bye + (1 - bye) * match_win
        slots = (slots + 1) // 2
    return win


def score_of(text: str) -> int:
    """The score a test candidate carries as its last word ("answer 7" scores 7)."""
    return int(text.split()[-1])


def scored_responder(candidates: Sequence[str]) -> Callable[[GenerationRequest, int], str]:
    """A `ScriptedEngine` responder: sample i is `candidates[i]`; the judge prefers the
    higher score in either order, in the mode the request asks for."""
    def respond(request: GenerationRequest, index: int) -> str:
        if _R1 not in request.prompt:
            return candidates[index]
        first, second = responses_in(request.prompt)
        digit = "1" if score_of(first) > score_of(second) else "2"
        if request.sampling.choices:
            return digit
        return f"<think>{first} against {second}</think> \\boxed{{{digit}}}"
    return respond
