"""The rules of one match: judgment records, the majority, splits and how they are broken.

Pure functions over judgments that `PairJudge` (critic_loop.pairwise) collected: the
majority of valid votes wins; a split goes to the summed probabilities (fast mode), then to
the extra judgment if one was taken (reason mode), then, under answer-aware merging, to the
side that more candidates gave as their answer (`settle_by_vote_count`), then to the
match's seeded coin. A calibrated fast judge (the default) is decided by its content
preference with the position bias removed (`content_preference`) instead.
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
_FLOOR = 1e-300
"""The least probability a digit gets before log-odds: a judge that puts all its mass on
one digit is very sure (log-odds ±690), not infinitely, so certain orders still subtract."""


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
    def order_agreement(self) -> bool | None:
        """Whether the judge named the same candidate whichever was shown first: True when
        every valid verdict names one candidate, None unless both orders have a valid
        verdict. Over right-vs-wrong pairs, a judge that prefers the right answer with
        probability p_comp in each order independently agrees with probability
        p_comp² + (1 − p_comp)², so agreement is p_comp's observable proxy (a judge that
        answers by position never agrees)."""
        valid = [j for j in self.judgments if j.verdict is not None]
        if len({j.order[0] for j in valid}) < 2:
            return None
        return len({j.verdict for j in valid}) == 1

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
           *, by_probability: bool, coin: Coin, key: str = "",
           calibrate: bool = False, prior: float | None = None) -> MatchResult:
    """The match's result from its K regular judgments and an optional extra one.

    `by_probability` (fast mode) breaks a split by the summed probabilities first. With
    `calibrate` too, the position-corrected preference (`content_preference`, `prior`
    the judge's known position bias) decides instead of the raw votes and sums; the
    score is then that preference as a probability per judgment. A zero preference (no
    content signal) goes to the coin: the raw majority it would overrule is position.
    """
    a, b = pair
    judgments = (*regular, extra) if extra is not None else tuple(regular)
    score = (_score(judgments, a), _score(judgments, b))
    regular_a, regular_b = _count(regular, a), _count(regular, b)
    majority = a if regular_a > regular_b else b if regular_b > regular_a else None
    preference = (content_preference(pair, judgments, prior)
                  if by_probability and calibrate else None)
    decided_by: DecidedBy
    if preference is not None:
        weighed = sum(1 for j in judgments if j.probabilities is not None)
        score = (weighed * _sigmoid(preference), weighed * _sigmoid(-preference))
    if preference is not None and abs(preference) > _TIE_TOLERANCE:
        winner = a if preference > 0 else b
        decided_by = "majority" if winner == majority else "probability"
    elif preference is None and majority is not None:
        winner, decided_by = majority, "majority"
    elif preference is None and by_probability and _differ(score):
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


def content_preference(pair: tuple[int, int], judgments: Sequence[Judgment],
                       prior: float | None = None) -> float | None:
    """The judge's preference for pair[0] over pair[1] in log-odds, its position bias
    removed; None without probabilities.

    Model a fast judgment as  logit P("1" | x shown first, y second) = β + δ(x, y),  with
    β the judge's position bias (its prior for "1") and δ(x, y) = −δ(y, x) its content
    preference. With the log-odds L(a, b) and L(b, a) of the two orders,

        β = (L(a, b) + L(b, a)) / 2,    δ(a, b) = (L(a, b) − L(b, a)) / 2.

    Each order's log-odds are averaged first, so an order judged more often (odd K) does
    not weigh more: with both orders judged, β cancels and no prior is needed. With one
    order only (K = 1, or the other order's votes invalid), δ = ±(L − prior): the prior is
    the judge's bias measured elsewhere (a model's calibration), else 0, which is the raw
    judgment.

    Adding the two orders' raw probabilities (the uncalibrated sum) picks the same winner
    as δ when K = 2 and both are valid (p(a,b) > p(b,a) exactly when L(a,b) > L(b,a)); it
    differs where orders are unbalanced: a greedy judge's K = 3 counts one order twice, so
    a judge that always says "1" wins the majority for whoever was shown first.

    >>> j = lambda order, p1: Judgment(order, order[0], None, "1", (p1, 1 - p1))
    >>> round(content_preference((0, 1), [j((0, 1), 0.9), j((1, 0), 0.8)]), 3)
    0.405
    >>> round(content_preference((0, 1), [j((0, 1), 0.9)], prior=math.log(9)), 3)
    0.0
    """
    a = pair[0]
    by_order: dict[bool, list[float]] = {True: [], False: []}
    for j in judgments:
        if j.probabilities is not None:
            by_order[j.order[0] == a].append(_log_odds(*j.probabilities))
    first, second = by_order[True], by_order[False]
    if first and second:
        return (math.fsum(first) / len(first) - math.fsum(second) / len(second)) / 2
    bias = prior or 0.0
    if first:
        return math.fsum(first) / len(first) - bias
    if second:
        return bias - math.fsum(second) / len(second)
    return None


def _log_odds(first: float, second: float) -> float:
    """log(P("1") / P("2")) from both probabilities (1 − p would lose a near-certain one)."""
    return math.log(max(first, _FLOOR)) - math.log(max(second, _FLOOR))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _count(judgments: Sequence[Judgment], candidate: int) -> int:
    return sum(1 for j in judgments if j.verdict == candidate)


def _score(judgments: Sequence[Judgment], candidate: int) -> float:
    return math.fsum(w for j in judgments if (w := j.weight(candidate)) is not None)


def _differ(score: tuple[float, float]) -> bool:
    return abs(score[0] - score[1]) > _TIE_TOLERANCE * max(1.0, abs(score[0]), abs(score[1]))
