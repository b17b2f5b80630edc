"""What a self-critic run reports: its cost by phase, its matches and, on request, a trace.

`SelfCriticReport.to_dict()` is the top-level `self_critic` object of a chat completion;
its field names are part of the HTTP API (docs/api.md), and the server's metrics read the
same attributes (judge calls, rounds, matches by outcome, invalid votes, tokens by phase,
judge calls saved by answer merging, the judge's order agreement).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from critic_loop.answers import extract_answer
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Completion
from critic_loop.entrants import find_duplicates
from critic_loop.match import DECIDERS, Judgment, MatchResult
from critic_loop.selection.signals import CandidateSignals
from critic_loop.tournament import KnockoutResult, RoundRecord


@dataclass(frozen=True)
class TokenUsage:
    """Prompt and completion tokens, as OpenAI's `usage` counts them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.prompt_tokens + other.prompt_tokens,
                          self.completion_tokens + other.completion_tokens)

    @classmethod
    def of_judgments(cls, judgments: Iterable[Judgment]) -> TokenUsage:
        prompt = completion = 0
        for j in judgments:
            prompt += j.prompt_tokens
            completion += j.completion_tokens
        return cls(prompt, completion)

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class OrderAgreement:
    """How often the judge named the same candidate whichever was shown first, over the
    matches judged in both orders whose two sides differ in answer (`MatchResult.
    order_agreement`): the observable proxy for p_comp, the judge's chance of preferring
    the right answer of a right-vs-wrong pair (agreement ≈ p_comp² + (1 − p_comp)²)."""

    agreed: int = 0
    judged: int = 0

    @property
    def rate(self) -> float | None:
        return self.agreed / self.judged if self.judged else None

    @classmethod
    def of_matches(cls, matches: Iterable[MatchResult],
                   same_answer: Callable[[int, int], bool] = lambda a, b: False
                   ) -> OrderAgreement:
        """Count the matches judged in both orders, leaving out pairs `same_answer` says
        give one answer (they tell nothing about telling right from wrong)."""
        agreed = judged = 0
        for match in matches:
            agreement = match.order_agreement
            if agreement is None or same_answer(*match.pair):
                continue
            judged += 1
            agreed += agreement
        return cls(agreed, judged)

    def to_dict(self) -> dict[str, Any]:
        rate = self.rate
        return {"agreed": self.agreed, "judged": self.judged,
                "rate": None if rate is None else round(rate, 6)}


@dataclass(frozen=True)
class SelfCriticReport:
    """One run's summary; `knockout` keeps every match for the trace (whatever strategy
    chose: a league's or a hybrid's matches are its rounds, a vote has none)."""

    config: SelfCriticConfig
    knockout: KnockoutResult
    candidate_usage: TokenUsage
    candidates: tuple[Completion, ...] = field(default=(), repr=False)
    notes: tuple[str, ...] = ()
    """What the run changed from what was asked (e.g. the schedule), in words."""
    images: int = 0
    """Images every candidate and judgment saw (a count: the report never holds them)."""
    selection: Mapping[str, Any] = field(default_factory=dict)
    """The selection strategy's own details (`critic_loop.selection.base.Selection`)."""
    signals: tuple[CandidateSignals | None, ...] = ()
    """Per candidate, its confidence signals (None without logprobs)."""
    adaptive: Any = None
    """With adaptive sampling, its `critic_loop.adaptive.AdaptiveReport`."""
    grouping: Mapping[str, Any] | None = None
    """How candidates were grouped into answers, when the caller says (the server's
    `--exec-grouping`): `{"grouping": "behaviour", "behaviour": {...}}`, or `"answer"` or
    `"text"`; merged into `to_dict`."""

    @property
    def judge_usage(self) -> TokenUsage:
        every = (*self.knockout.matches, *self.knockout.discarded)
        return TokenUsage.of_judgments(j for m in every for j in m.judgments)

    @property
    def usage(self) -> TokenUsage:
        """Every token spent: candidates and judge."""
        return self.candidate_usage + self.judge_usage

    @property
    def rounds(self) -> int:
        return self.knockout.judged_rounds

    @property
    def judge_calls(self) -> int:
        return self.knockout.judge_calls

    @property
    def consistency(self) -> float | None:
        return self.knockout.consistency

    @property
    def invalid_votes(self) -> int:
        return self.knockout.invalid_votes

    @property
    def order_agreement(self) -> OrderAgreement:
        """The judge's order agreement over this run's matches whose two candidates give
        different answers (read as `answer_format` / `answer_pattern` say; a pair where
        either gives none counts, as its texts differ)."""
        texts = {c.index: c.text for c in self.candidates}
        answers: dict[int, str | None] = {}

        def answer(i: int) -> str | None:
            if i not in answers:
                answers[i] = (extract_answer(texts[i], self.config.answer_format,
                                             self.config.answer_pattern)
                              if i in texts else None)
            return answers[i]

        def same_answer(a: int, b: int) -> bool:
            return answer(a) is not None and answer(a) == answer(b)

        return OrderAgreement.of_matches(self.knockout.matches, same_answer)

    @property
    def matches(self) -> dict[str, int]:
        """Matches by outcome: consistent / majority / split / invalid."""
        return self.knockout.outcomes

    @property
    def decided_by(self) -> dict[str, int]:
        counts = Counter(m.decided_by for m in self.knockout.matches)
        return {d: counts.get(d, 0) for d in DECIDERS}

    @property
    def judge_calls_saved(self) -> int:
        """Answer merging's saving: the (U−1)·K judge calls that identical-text merging of
        the same candidates would have made (U distinct texts), minus the calls made; never
        negative, and 0 under text merging."""
        if self.config.merge != "answer" or not self.candidates:
            return 0
        distinct = find_duplicates([c.text for c in self.candidates]).count(None)
        return max(0, (distinct - 1) * self.config.comparisons - self.judge_calls)

    def to_dict(self) -> dict[str, Any]:
        """The `self_critic` object of a response, with the trace when the config asks."""
        out: dict[str, Any] = {
            "candidates": self.knockout.size,
            "select": self.config.select,
            "include_greedy": self.config.include_greedy,
            "judge": self.config.mode.value,
            "comparisons": self.config.comparisons,
            "schedule": self.config.schedule,
            "merge": self.config.merge,
            "entrants": len(self.knockout.entrants),
            "rounds": self.rounds,
            "judge_calls": self.judge_calls,
            "judge_calls_saved": self.judge_calls_saved,
            "consistency": self.consistency,
            "order_agreement": self.order_agreement.to_dict(),
            "invalid_votes": self.invalid_votes,
            "matches": self.matches,
            "decided_by": self.decided_by,
            "usage": {"candidate": self.candidate_usage.to_dict(),
                      "judge": self.judge_usage.to_dict(),
                      "total": self.usage.to_dict()},
        }
        if self.notes:
            out["notes"] = list(self.notes)
        if self.images:
            out["images"] = self.images
        if self.adaptive is not None:
            out["adaptive"] = self.adaptive.to_dict()
        if self.grouping is not None:
            out.update(self.grouping)
        if self.config.return_trace:
            out["trace"] = trace_dict(self.knockout, self.candidates, self.signals)
            out["trace"]["selection"] = {"strategy": self.config.select, **self.selection}
            if self.images:
                out["trace"]["images"] = self.images
            if self.config.merge == "answer":
                out["trace"]["entrants"] = entrants_in_rank_order(self.knockout)
        return out


def trace_dict(knockout: KnockoutResult, candidates: Sequence[Completion] = (),
               signals: Sequence[CandidateSignals | None] = ()) -> dict[str, Any]:
    """Every candidate (with its confidence signals when known) and every round's matches
    with their judgments."""
    texts: Mapping[int, Completion] = {c.index: c for c in candidates}
    out: dict[str, Any] = {
        "ranking": list(knockout.ranking),
        "candidates": [
            {"index": i, "text": texts[i].text if i in texts else None,
             "finish_reason": texts[i].finish_reason if i in texts else None,
             "completion_tokens": texts[i].completion_tokens if i in texts else None,
             "duplicate_of": knockout.duplicate_of[i],
             "preference": round(knockout.preference[i], 6),
             "signals": _signals_dict(signals, i)}
            for i in range(knockout.size)],
        "rounds": [_round_dict(r) for r in knockout.rounds],
    }
    if knockout.discarded:
        out["discarded"] = [m.to_dict() for m in knockout.discarded]
    return out


def entrants_in_rank_order(knockout: KnockoutResult) -> list[dict[str, Any]]:
    """Each entrant (answer, representative, members, truncated), best-ranked first."""
    place = {c: i for i, c in enumerate(knockout.ranking)}
    ordered = sorted(knockout.entrants, key=lambda e: place[e.representative])
    return [e.to_dict() for e in ordered]


def _round_dict(record: RoundRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"round": record.number,
                           "matches": [m.to_dict() for m in record.matches],
                           "advanced": list(record.advanced)}
    if record.walkovers:
        out["walkovers"] = [w.to_dict() for w in record.walkovers]
    return out


def _signals_dict(signals: Sequence[CandidateSignals | None], i: int
                  ) -> dict[str, Any] | None:
    found = signals[i] if i < len(signals) else None
    return None if found is None else found.to_dict()
