"""Pairwise matches: K judgments of two candidates in alternating order, one verdict.

A match asks the judge K times, alternating which candidate is "Response 1" so that a
judge's position bias cancels. The majority of valid votes wins; a split is broken by the
summed probabilities (fast mode) or by one more judgment and then a seeded coin (reason
mode), and the match says which. `PairJudge.play` sends every judgment of every match it
is given to the engine in one `generate` call, so the engine batches them.
"""

from __future__ import annotations

import logging
import math
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import (
    Engine,
    GenerationRequest,
    GenerationResult,
    Message,
    SamplingOptions,
)
from critic_loop.judge_prompt import VERDICT_CHOICES, JudgeMode, judge_messages
from critic_loop.verdict import parse_verdict, probabilities_from_logprobs

logger = logging.getLogger(__name__)

Outcome = Literal["consistent", "majority", "split", "invalid"]
"""How the K regular judgments went: all valid and unanimous; all valid, a majority but not
unanimous (only K >= 3); valid votes tied; at least one invalid vote."""
OUTCOMES: tuple[Outcome, ...] = ("consistent", "majority", "split", "invalid")

DecidedBy = Literal["majority", "probability", "extra_judgment", "coin"]
DECIDERS: tuple[DecidedBy, ...] = ("majority", "probability", "extra_judgment", "coin")

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
        }


@dataclass(frozen=True)
class Pairing:
    """Two distinct candidates to judge. `key` names the match ("r1-m0") in request ids
    and seeds its coin, so its result does not depend on when it is played."""

    a: int
    b: int
    text_a: str
    text_b: str
    key: str


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


class PairJudge:
    """Plays matches for one question with one engine: builds, batches and decides."""

    def __init__(self, engine: Engine, question: str | Sequence[Message],
                 config: SelfCriticConfig, *,
                 request_id: str, seed: int) -> None:
        self.engine = engine
        self.question = question
        self.config = config
        self.mode = config.mode
        self.comparisons = config.comparisons
        self.max_tokens = 1 if self.mode is JudgeMode.FAST else config.judge_max_tokens
        self.extra_allowed = config.extra_judgment
        self.request_id = request_id
        self.seed = seed
        self._used_ids: set[str] = set()

    async def play(self, pairings: Sequence[Pairing]) -> list[MatchResult]:
        """Judge every pairing: one engine call for all K judgments of all of them, and
        (reason mode, only when a match splits) one more call for the extra judgments."""
        if not pairings:
            return []
        prefixes = [self._prefix(p.key) for p in pairings]
        orders = [[(p.a, p.b) if k % 2 == 0 else (p.b, p.a) for k in range(self.comparisons)]
                  for p in pairings]
        jobs = [(p, order, f"{prefix}-j{k}", k)
                for p, prefix, match_orders in zip(pairings, prefixes, orders, strict=True)
                for k, order in enumerate(match_orders)]
        judged = await self._judge(jobs)
        regular = [judged[i * self.comparisons:(i + 1) * self.comparisons]
                   for i in range(len(pairings))]
        coins = [_Coin(f"{self.seed}:{p.key}") for p in pairings]

        tied = [i for i, p in enumerate(pairings)
                if self.extra_allowed and _is_tie((p.a, p.b), regular[i])]
        extra_jobs = [(pairings[i], self._extra_order(pairings[i], coins[i]),
                       f"{prefixes[i]}-x", self.comparisons) for i in tied]
        extras = dict(zip(tied, await self._judge(extra_jobs), strict=True)) if tied else {}
        results = [self._decide(p, regular[i], extras.get(i), coins[i])
                   for i, p in enumerate(pairings)]
        return results

    # -- building and sending judgments ---------------------------------------------------
    def _prefix(self, key: str) -> str:
        prefix, replay = f"{self.request_id}-{key}", 1
        while prefix in self._used_ids:  # a pipelined replay of the same bracket slot
            prefix, replay = f"{self.request_id}-{key}-s{replay}", replay + 1
        self._used_ids.add(prefix)
        return prefix

    def _extra_order(self, p: Pairing, coin: _Coin) -> tuple[int, int]:
        if self.comparisons % 2 == 1:  # K odd: continuing the alternation balances orders
            return (p.b, p.a)
        return (p.a, p.b) if coin.heads() else (p.b, p.a)

    def _sampling(self, key: str, k: int) -> SamplingOptions:
        if self.mode is JudgeMode.FAST:
            return SamplingOptions(max_tokens=1, temperature=0.0, choices=VERDICT_CHOICES)
        seed = None
        if self.config.seed is not None:  # reproducible judge samples for a seeded run
            seed = zlib.crc32(f"{self.config.seed}:{key}:{k}".encode()) & 0x7FFFFFFF
        return SamplingOptions(max_tokens=self.max_tokens,
                               temperature=self.config.judge_temperature, seed=seed)

    async def _judge(self, jobs: Sequence[tuple[Pairing, tuple[int, int], str, int]]
                     ) -> list[Judgment]:
        requests: list[GenerationRequest] = []
        slots: list[int | None] = []
        for p, order, rid, k in jobs:
            texts = (p.text_a, p.text_b) if order[0] == p.a else (p.text_b, p.text_a)
            prompt = self.engine.render_chat(
                judge_messages(self.question, texts[0], texts[1], self.mode))
            if self._fits(prompt):
                slots.append(len(requests))
                requests.append(GenerationRequest(rid, prompt, self._sampling(p.key, k)))
            else:
                logger.warning("judge prompt %s does not fit the context; invalid vote", rid)
                slots.append(None)
        results = await self.engine.generate(requests) if requests else []
        return [self._read(order, rid, None if slot is None else results[slot])
                for (_, order, rid, _), slot in zip(jobs, slots, strict=True)]

    def _fits(self, prompt: str) -> bool:
        limit = self.engine.max_model_len - self.max_tokens
        # Tokens never outnumber UTF-8 bytes (+ a few specials): skip counting short prompts.
        if len(prompt.encode()) + 8 <= limit:
            return True
        return self.engine.count_tokens(prompt) <= limit

    def _read(self, order: tuple[int, int], rid: str,
              result: GenerationResult | None) -> Judgment:
        if result is None or not result.completions:
            return Judgment(order, None, None, "", None, request_id=rid,
                            finish_reason=PROMPT_TOO_LONG if result is None else "abort")
        completion = result.completions[0]
        probabilities = None
        if self.mode is JudgeMode.FAST and completion.choice_logprobs is not None:
            probabilities = probabilities_from_logprobs(completion.choice_logprobs,
                                                        VERDICT_CHOICES)
        if probabilities is not None:
            first, second = probabilities
            said = None if first == second else (1 if first > second else 2)
        else:
            said = parse_verdict(completion.text)
        return Judgment(
            order=order,
            verdict=None if said is None else order[said - 1],
            reasoning=reasoning_of(completion.text),
            text=completion.text,
            probabilities=probabilities,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            finish_reason=completion.finish_reason,
            request_id=rid,
        )

    # -- deciding ------------------------------------------------------------------------
    def _decide(self, p: Pairing, regular: Sequence[Judgment], extra: Judgment | None,
                coin: _Coin) -> MatchResult:
        pair = (p.a, p.b)
        judgments = (*regular, extra) if extra is not None else tuple(regular)
        votes = (_count(judgments, p.a), _count(judgments, p.b))
        score = (_score(judgments, p.a), _score(judgments, p.b))
        regular_a, regular_b = _count(regular, p.a), _count(regular, p.b)
        decided_by: DecidedBy
        if regular_a != regular_b:
            winner, decided_by = (p.a if regular_a > regular_b else p.b), "majority"
        elif self.mode is JudgeMode.FAST and _differ(score):
            winner, decided_by = (p.a if score[0] > score[1] else p.b), "probability"
        elif extra is not None and extra.verdict is not None:
            winner, decided_by = extra.verdict, "extra_judgment"
        else:
            winner, decided_by = (p.a if coin.heads() else p.b), "coin"
        return MatchResult(
            pair=pair, winner=winner, outcome=classify(pair, regular), decided_by=decided_by,
            votes=votes, invalid_votes=sum(1 for j in judgments if j.verdict is None),
            score=score, judgments=judgments, key=p.key)


class _Coin:
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


def _is_tie(pair: tuple[int, int], judgments: Sequence[Judgment]) -> bool:
    return _count(judgments, pair[0]) == _count(judgments, pair[1])


def _differ(score: tuple[float, float]) -> bool:
    return abs(score[0] - score[1]) > _TIE_TOLERANCE * max(1.0, abs(score[0]), abs(score[1]))
