"""The rules of one match: judgment records, the majority, splits and how they are broken.

Pure functions over judgments that `PairJudge` (critic_loop.pairwise) collected: the
majority of valid votes wins; a split goes to the summed probabilities (fast mode), then to
the extra judgment if one was taken (reason mode), then, under answer-aware merging, to the
side that more candidates gave as their answer (`settle_by_vote_count`), then to the
match's seeded coin.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

Outcome = Literal["consistent", "majority", "split", "invalid"]
"""How the K regular judgments went: all valid and unanimous; all valid, a majority but not
unanimous (only K >= 3); valid votes tied; at least one invalid vote."""
OUTCOMES: tuple[Outcome, ...] = ("consistent", "majority", "split", "invalid")

DecidedBy = Literal["majority", "probability", "extra_judgment", "votes", "coin"]
DECIDERS: tuple[DecidedBy, ...] = ("majority", "probability", "extra_judgment", "votes", "coin")

PROMPT_TOO_LONG = "prompt_too_long"
"""Finish reason of a judgment that was never sent: its prompt does not fit the context."""

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)
_TIE_TOLERANCE = 1e-9


def reasoning_of(text: str) -> str | None:
    """The text inside `<think>...</think>` (to the end if never closed), else None.

    >>> reasoning_of("<think> compare them </think> \\\\boxed{1}")
    'compare them'
    >>> reasoning_of("1") is None
    True
    """
    found = _THINK.search(text)
    return found.group(1).strip() if found else None


@dataclass(frozen=True)
class Judgment:
    """One judge call: which candidate was shown first, and what the judge said."""

    order: tuple[int, int]
    """Candidate indices shown as Response 1 and Response 2."""
    verdict: int | None
    """The preferred candidate's index, or None for an invalid vote."""
    reasoning: str | None
    text: str
    probabilities: tuple[float, float] | None
    """Fast mode: the probability of Response 1 and of Response 2 (aligned with `order`)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    request_id: str = ""
    repeated: bool = False
    """A greedy judge's earlier answer to the same prompt, counted again instead of
    generated again (no tokens spent)."""
    forced: bool = False
    """A reason judgment that named no response, ended by one restricted token after its
    reasoning (critic_loop.pairwise.force_verdicts): the verdict and probabilities are
    that token's."""

    @property
    def sent(self) -> bool:
        """Whether this judgment reached the engine (and counts as a judge call)."""
        return self.finish_reason != PROMPT_TOO_LONG

    def weight(self, candidate: int) -> float | None:
        """The share of this judgment going to `candidate`: its probability when known,
        else 1 or 0 by the verdict; None for an invalid vote."""
        if self.probabilities is not None:
            return self.probabilities[self.order.index(candidate)]
        if self.verdict is None:
            return None
        return 1.0 if self.verdict == candidate else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": list(self.order),
            "verdict": self.verdict,
            "reasoning": self.reasoning,
            "text": self.text,
            "probabilities": list(self.probabilities) if self.probabilities else None,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            **({"repeated": True} if self.repeated else {}),
            **({"forced": True} if self.forced else {}),
        }


@dataclass(frozen=True)
class MatchResult:
    """The verdict of one match and every judgment behind it."""

    pair: tuple[int, int]
    winner: int
    outcome: Outcome
    decided_by: DecidedBy
    votes: tuple[int, int]
    """Valid votes for pair[0] and pair[1] over all judgments (the extra one included)."""
    invalid_votes: int
    score: tuple[float, float]
    """Summed weights (probabilities in fast mode, votes otherwise) for pair[0], pair[1]."""
    judgments: tuple[Judgment, ...]
    key: str = ""

    @property
    def loser(self) -> int:
        return self.pair[1] if self.winner == self.pair[0] else self.pair[0]

    @property
    def weighted(self) -> int:
        """How many judgments carry a weight (valid votes or known probabilities)."""
        return sum(1 for j in self.judgments if j.weight(self.pair[0]) is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": list(self.pair),
            "winner": self.winner,
            "outcome": self.outcome,
            "decided_by": self.decided_by,
            "votes": list(self.votes),
            "invalid_votes": self.invalid_votes,
            "score": [round(s, 6) for s in self.score],
            "judgments": [j.to_dict() for j in self.judgments],
        }


def classify(pair: tuple[int, int], judgments: Sequence[Judgment]) -> Outcome:
    """The outcome of a match's regular judgments (see `Outcome`)."""
    verdicts = [j.verdict for j in judgments]
    if None in verdicts:
        return "invalid"
    votes_a, votes_b = verdicts.count(pair[0]), verdicts.count(pair[1])
    if votes_a == votes_b:
        return "split"
    return "consistent" if min(votes_a, votes_b) == 0 else "majority"


def decide(pair: tuple[int, int], regular: Sequence[Judgment], extra: Judgment | None,
           *, by_probability: bool, coin: Coin, key: str = "") -> MatchResult:
    """The match's result from its K regular judgments and an optional extra one.

    `by_probability` (fast mode) breaks a split by the summed probabilities first.
    """
    a, b = pair
    judgments = (*regular, extra) if extra is not None else tuple(regular)
    score = (_score(judgments, a), _score(judgments, b))
    regular_a, regular_b = _count(regular, a), _count(regular, b)
    decided_by: DecidedBy
    if regular_a != regular_b:
        winner, decided_by = (a if regular_a > regular_b else b), "majority"
    elif by_probability and _differ(score):
        winner, decided_by = (a if score[0] > score[1] else b), "probability"
    elif extra is not None and extra.verdict is not None:
        winner, decided_by = extra.verdict, "extra_judgment"
    else:
        winner, decided_by = (a if coin.heads() else b), "coin"
    return MatchResult(
        pair=pair, winner=winner, outcome=classify(pair, regular), decided_by=decided_by,
        votes=(_count(judgments, a), _count(judgments, b)),
        invalid_votes=sum(1 for j in judgments if j.verdict is None),
        score=score, judgments=judgments, key=key)


def settle_by_vote_count(result: MatchResult, members: tuple[int, int]) -> MatchResult:
    """A match `decide` left to the coin goes instead to the side with more members (the
    candidates an answer-aware entrant stands for); equal counts keep the coin's call.

    It is the rule just before the coin, applied to `decide`'s result because only the
    bracket knows who stands for how many. The coin was flipped already, but a match's coin
    is its own (keyed by the match), so overruling it changes nothing else.

    >>> coin = MatchResult((0, 3), 0, "split", "coin", (1, 1), 0, (1.0, 1.0), ())
    >>> settled = settle_by_vote_count(coin, (1, 4))
    >>> settled.winner, settled.decided_by
    (3, 'votes')
    """
    if result.decided_by != "coin" or members[0] == members[1]:
        return result
    winner = result.pair[0] if members[0] > members[1] else result.pair[1]
    return replace(result, winner=winner, decided_by="votes")


def is_split(pair: tuple[int, int], judgments: Sequence[Judgment]) -> bool:
    """Whether the valid votes are tied (no valid vote at all included)."""
    return _count(judgments, pair[0]) == _count(judgments, pair[1])


class Coin:
    """A match's seeded coin, keyed by the match so its flips do not depend on timing;
    seeded on first use because most matches never flip it."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._rng: random.Random | None = None

    def heads(self) -> bool:
        if self._rng is None:
            self._rng = random.Random(self.key)
        return self._rng.random() < 0.5


def _count(judgments: Sequence[Judgment], candidate: int) -> int:
    return sum(1 for j in judgments if j.verdict == candidate)


def _score(judgments: Sequence[Judgment], candidate: int) -> float:
    return math.fsum(w for j in judgments if (w := j.weight(candidate)) is not None)


def _differ(score: tuple[float, float]) -> bool:
    return abs(score[0] - score[1]) > _TIE_TOLERANCE * max(1.0, abs(score[0]), abs(score[1]))
