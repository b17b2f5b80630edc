"""What every selection strategy takes and returns, so that all are reported the same way.

A strategy reads a `Pool` (the candidates and their confidence signals), may ask the
pairwise judge, and returns a `Selection`: the ranking (every candidate once, winner first),
the matches it judged and the entrants it ranked (as a `KnockoutResult`, the record the
report and the metrics already read), and its own details for the trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Completion
from critic_loop.entrants import Draw
from critic_loop.pairwise import PairJudge
from critic_loop.selection.signals import CandidateSignals
from critic_loop.tournament import KnockoutResult, RoundRecord, preference_shares

GroupBy = Callable[[Sequence[Completion]], Sequence[Hashable]]
"""One key per candidate; candidates with equal keys form one answer group (e.g. programs
that behave alike on the prompt's own examples). Replaces grouping by extracted answer. A
None key gives its candidate no vote: it ranks below every candidate with a key (e.g. a
program that contradicts an output the prompt states)."""
AsyncGroupBy = Callable[[Sequence[Completion]], Awaitable[Sequence[Hashable]]]
"""A `GroupBy` whose keys take work that must not run on the event loop (running the
candidates' programs): `best_of_n` awaits it before the selection, which stays pure."""


@dataclass(frozen=True)
class Pool:
    """The candidates, by index, each one's signals (None without logprobs), and how they
    group into answers when not by `critic_loop.answers` extraction."""

    completions: tuple[Completion, ...]
    signals: tuple[CandidateSignals | None, ...]
    group_by: GroupBy | None = None

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.completions]

    def confidence(self, index: int) -> float | None:
        """The confidence strategies weigh by: DeepConf's lowest group confidence."""
        signals = self.signals[index]
        return None if signals is None else signals.lowest_group_confidence


@dataclass(frozen=True)
class Selection:
    """A strategy's result: its name, what was played and ranked, and its details."""

    strategy: str
    played: KnockoutResult
    """The ranking, winner, entrants, merges and judged matches (as rounds); for a
    strategy that judges nothing, no rounds and every preference 0.5."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Strategy-specific figures for the trace (JSON-ready)."""

    @property
    def ranking(self) -> tuple[int, ...]:
        return self.played.ranking

    @property
    def winner(self) -> int:
        return self.played.winner


Run = Callable[[Pool, PairJudge, SelfCriticConfig], Awaitable[Selection]]


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: how to run it and what it needs from the candidates."""

    name: str
    run: Run
    needs_confidence: bool = False
    """Whether it reads confidence, so the candidates must be sampled with top-k logprobs."""


def answer_draw(pool: Pool, config: SelfCriticConfig) -> Draw:
    """Candidates grouped by `pool.group_by`, else by extracted answer (text when they have
    none)."""
    if pool.group_by is None:
        return Draw.of_answers(pool.completions, config.answer_format, config.answer_pattern)
    keys = list(pool.group_by(pool.completions))
    return Draw.of_keys(pool.completions, keys,
                        [k if isinstance(k, str) else None for k in keys])


def merged_draw(pool: Pool, config: SelfCriticConfig) -> Draw:
    """The entrants the config's `merge` asks for: distinct texts or distinct answers."""
    return answer_draw(pool, config) if config.merge == "answer" else Draw.of_texts(pool.texts)


def ranked_selection(strategy: str, draw: Draw, order: Sequence[int],
                     rounds: Sequence[RoundRecord] = (),
                     details: Mapping[str, Any] | None = None) -> Selection:
    """The selection ranking entrants' representatives in `order`, each entrant's other
    members right after its representative (as the knockout ranks them)."""
    size = len(draw.duplicate_of)
    members = {e.representative: e.members for e in draw.entrants}
    if sorted(order) != sorted(members):
        raise ValueError(f"order {list(order)} must list every representative once")
    ranking = tuple(m for c in order for m in members[c])
    share = preference_shares(size, [m for r in rounds for m in r.matches])
    preference = tuple(share[c if d is None else d] for c, d in enumerate(draw.duplicate_of))
    played = KnockoutResult(size, order[0], ranking, preference, draw.duplicate_of,
                            tuple(rounds), (), draw.entrants)
    return Selection(strategy, played, dict(details or {}))
