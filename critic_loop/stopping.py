"""When adaptive best-of-N may stop sampling: pure rules over answer counts and confidences.

Agreement: the leading answer is certain once the runner-up could not catch it even if every
undecided candidate joined it. Waves (adaptive consistency, Aggarwal et al. 2023): more
candidates are drawn only while the majority is uncertain by their Beta criterion. Confidence
(DeepConf online, Fu et al. 2025, arXiv 2508.15260): a candidate whose sliding-window group
confidence falls below a threshold set from the first finished candidates is stopped.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

from critic_loop.answers import extract_answer
from critic_loop.engine import TokenLogprob
from critic_loop.entrants import normalise
from critic_loop.selection.signals import token_confidence

MAJORITY_CONFIDENCE = 0.95
"""Adaptive consistency's stopping threshold on P(leader's share > runner-up's)."""
CONFIDENCE_WINDOW = 16
"""Tokens per DeepConf group (the paper uses 2048 on long reasoning; our answers are short)."""
CONFIDENCE_TOP_K = 5
"""Alternatives per token in DeepConf's token confidence (logprobs asked of the engine)."""
CONFIDENCE_KEEP = 0.9
"""DeepConf-high: the threshold keeps the top 90% of the warm-up candidates."""


def answer_key(text: str, fmt: str = "auto", pattern: str | None = None) -> tuple[str, str]:
    """What groups candidates: their extracted answer, else their text (as answer merging).

    >>> answer_key("so 2 + 2 = 4") == answer_key("The answer is 4.")
    True
    """
    answer = extract_answer(text, fmt, pattern)
    return ("answer", answer) if answer is not None else ("text", normalise(text))


def lead(counts: Iterable[int]) -> tuple[int, int]:
    """The largest and second-largest group sizes (0 where there is none)."""
    top = [*sorted(counts, reverse=True)[:2], 0, 0]
    return top[0], top[1]


def certain(counts: Iterable[int], undecided: int) -> bool:
    """Whether the leading group stays ahead of every other even if all `undecided`
    candidates join the runner-up (or a new group).

    >>> certain([3, 1], 1), certain([3, 1], 2), certain([2, 2], 0)
    (True, False, False)
    """
    first, second = lead(counts)
    return first - second > undecided


def majority_probability(first: int, second: int) -> float:
    """P(p > 1/2) for p ~ Beta(first + 1, second + 1): adaptive consistency's belief that the
    leader is the more frequent answer (exact for integer counts: a binomial tail).

    >>> round(majority_probability(2, 0), 3), round(majority_probability(4, 0), 3)
    (0.875, 0.969)
    """
    n = first + second + 1
    return sum(math.comb(n, k) for k in range(first + 1)) / 2 ** n


def settled(counts: Sequence[int], running: int, unstarted: int, waves: bool) -> bool:
    """Whether to stop: the leader is certain over every candidate not finished; or, when
    sampling in waves, certain over those running and a majority by the Beta criterion
    (so no further wave would be drawn either).

    >>> settled([4], 0, 4, waves=True), settled([4], 0, 4, waves=False)
    (True, False)
    """
    if not counts:
        return False
    if certain(counts, running + unstarted):
        return True
    return waves and certain(counts, running) and \
        majority_probability(*lead(counts)) >= MAJORITY_CONFIDENCE


class GroupConfidence:
    """A candidate's DeepConf group confidences, online: means over sliding windows of the
    token confidences (`critic_loop.selection.signals.token_confidence`) of the tokens
    that carried top-k alternatives."""

    def __init__(self, window: int = CONFIDENCE_WINDOW) -> None:
        self.recent: deque[float] = deque(maxlen=window)
        self.window_total = 0.0
        self.total = 0.0
        self.tokens = 0
        self.full_lowest: float | None = None
        """The lowest mean over a full window so far (what online stopping compares)."""

    def add(self, tokens: Iterable[TokenLogprob]) -> None:
        for token in tokens:
            confidence = token_confidence(token)
            if confidence is None:  # no alternatives: skipped, as DeepConf skips it
                continue
            if len(self.recent) == self.recent.maxlen:
                self.window_total -= self.recent[0]
            self.recent.append(confidence)
            self.window_total += confidence
            self.total += confidence
            self.tokens += 1
            if len(self.recent) == self.recent.maxlen:
                mean = self.window_total / len(self.recent)
                self.full_lowest = mean if self.full_lowest is None else min(self.full_lowest,
                                                                             mean)

    @property
    def lowest(self) -> float | None:
        """The lowest group confidence: over full windows, or the whole candidate's mean
        when it is shorter than one window (None before any token)."""
        if self.full_lowest is not None:
            return self.full_lowest
        return self.total / self.tokens if self.tokens else None


def confidence_threshold(lowest: Sequence[float], keep: float = CONFIDENCE_KEEP) -> float:
    """The group confidence below which a candidate stops: the (1 − keep) quantile of the
    warm-up candidates' lowest group confidences (linear interpolation).

    >>> confidence_threshold([1.0, 2.0], keep=0.5)
    1.5
    """
    ordered = sorted(lowest)
    position = (1 - keep) * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def warm_up_size(candidates: int) -> int:
    """How many first-finished candidates set the confidence threshold: ⌈N/4⌉, at least 2.

    >>> warm_up_size(8), warm_up_size(16), warm_up_size(2)
    (2, 4, 2)
    """
    return min(candidates, max(2, math.ceil(candidates / 4)))
