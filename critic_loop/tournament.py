"""The knockout: a seeded bracket over N candidates, played round by round.

The bracket is fixed by N and the seed before any text exists: adjacent slots meet, and in
a round with an odd number of slots one slot, drawn uniformly, gets a bye. Candidates that
are identical after whitespace normalisation are merged before judging: the first one keeps
its slot, later copies leave theirs empty, and a side facing an empty slot advances without
a judgment (a walkover). So the knockout takes ⌈log2 N⌉ rounds at most, (U−1) matches for U
distinct candidates and (U−1)·K judge calls on the default path, and a pipelined schedule
of the same bracket (critic_loop.pipeline) reaches the same result from the same verdicts.
Answer-aware merging (`critic_loop.entrants.Draw.of_answers`) plays the same machinery over
a bracket of distinct answers, with its walkovers for truncated candidates and vote counts.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from critic_loop.entrants import Draw, Entrant
from critic_loop.entrants import find_duplicates as find_duplicates  # re-exported
from critic_loop.entrants import normalise as normalise  # re-exported
from critic_loop.match import OUTCOMES, Judgment, MatchResult
from critic_loop.pairwise import Pairing, PairJudge

logger = logging.getLogger(__name__)

Ref = tuple[int, int]
"""A bracket side: `(0, c)` is candidate slot c, `(r, m)` the winner of match m of round r."""


@dataclass(frozen=True)
class BracketMatch:
    """A match slot of the bracket; `key` names it in request ids and seeds its coin."""

    round: int
    index: int
    sides: tuple[Ref, Ref]

    @property
    def key(self) -> str:
        return f"r{self.round}-m{self.index}"

    @property
    def ref(self) -> Ref:
        return (self.round, self.index)


@dataclass(frozen=True)
class Bracket:
    """The seeded bracket of `size` slots: its rounds of matches and each round's bye."""

    size: int
    rounds: tuple[tuple[BracketMatch, ...], ...]
    byes: tuple[Ref | None, ...]
    final: Ref

    @classmethod
    def build(cls, size: int, seed: int) -> Bracket:
        """Pair adjacent slots round by round; a uniformly drawn slot sits out odd rounds."""
        if size < 1:
            raise ValueError(f"a bracket needs at least one slot, got {size}")
        entries: list[Ref] = [(0, c) for c in range(size)]
        rounds: list[tuple[BracketMatch, ...]] = []
        byes: list[Ref | None] = []
        while len(entries) > 1:
            number = len(rounds) + 1
            bye_at = None
            if len(entries) % 2:
                bye_at = random.Random(f"{seed}:bye:r{number}").randrange(len(entries))
            playing = [e for i, e in enumerate(entries) if i != bye_at]
            matches = tuple(BracketMatch(number, m, (playing[2 * m], playing[2 * m + 1]))
                            for m in range(len(playing) // 2))
            upcoming = [m.ref for m in matches]
            if bye_at is not None:
                upcoming.insert((bye_at + 1) // 2, entries[bye_at])
            rounds.append(matches)
            byes.append(None if bye_at is None else entries[bye_at])
            entries = upcoming
        return cls(size, tuple(rounds), tuple(byes), entries[0])


@dataclass(frozen=True)
class Walkover:
    """A pairing decided without the judge: a complete candidate against a truncated one
    (or one without a vote, `Entrant.voteless`)."""

    winner: int
    loser: int
    reason: str = "truncated"

    def to_dict(self) -> dict[str, int | str]:
        return {"winner": self.winner, "loser": self.loser, "reason": self.reason}


@dataclass(frozen=True)
class RoundRecord:
    """What happened in one round: its judged matches and who advanced without one."""

    number: int
    matches: tuple[MatchResult, ...]
    advanced: tuple[int, ...]
    """Candidates that advanced by a bye or a walkover (an opponent merged away or cut off)."""
    walkovers: tuple[Walkover, ...] = ()
    """Pairings a truncated side lost unjudged (answer merging only)."""


@dataclass(frozen=True)
class KnockoutResult:
    """The winner, the full ranking and every match that decided it."""

    size: int
    winner: int
    ranking: tuple[int, ...]
    preference: tuple[float, ...]
    """Per candidate: its share of the weight (votes or probabilities) in its matches."""
    duplicate_of: tuple[int | None, ...]
    rounds: tuple[RoundRecord, ...]
    discarded: tuple[MatchResult, ...] = ()
    """Matches a pipelined schedule played on a guess the bracket later overruled."""
    entrants: tuple[Entrant, ...] = ()
    """The sides that played: distinct texts, or distinct answers under answer merging."""

    @property
    def matches(self) -> tuple[MatchResult, ...]:
        return tuple(m for r in self.rounds for m in r.matches)

    @property
    def judgments(self) -> tuple[Judgment, ...]:
        return tuple(j for m in self.matches for j in m.judgments)

    @property
    def judged_rounds(self) -> int:
        """Rounds that needed the judge: the latency in rounds, ⌈log2 N⌉ at most."""
        return sum(1 for r in self.rounds if r.matches)

    @property
    def judge_calls(self) -> int:
        """Judgments sent to the engine (discarded pipelined matches included)."""
        every = (*self.matches, *self.discarded)
        return sum(1 for m in every for j in m.judgments if j.sent)

    @property
    def invalid_votes(self) -> int:
        return sum(m.invalid_votes for m in self.matches)

    @property
    def outcomes(self) -> dict[str, int]:
        counts = Counter(m.outcome for m in self.matches)
        return {o: counts.get(o, 0) for o in OUTCOMES}

    @property
    def consistency(self) -> float | None:
        """Share of matches whose judgments all agreed (both orders, for K = 2)."""
        matches = self.matches
        if not matches:
            return None
        return sum(1 for m in matches if m.outcome == "consistent") / len(matches)


MatchKey = tuple[Ref, int, int]
"""A match as played: its bracket slot and the two candidates that met there."""


async def play_rounds(bracket: Bracket, judge: PairJudge, texts: Sequence[str],
                      draw: Draw | None = None) -> KnockoutResult:
    """Play the bracket round by round, each round's judgments in one engine call.

    `draw` says who holds each slot (default: text merging over `texts`)."""
    draw = draw or Draw.of_texts(texts)
    if len(draw.slots) != bracket.size:
        raise ValueError(f"{len(draw.slots)} entries for a bracket of {bracket.size}")
    holders = _leaves(draw)
    played: dict[MatchKey, MatchResult] = {}
    for matches in bracket.rounds:
        pairings: list[tuple[MatchKey, Pairing]] = []
        for match in matches:
            a, b = (holders[side] for side in match.sides)
            if a is None or b is None:
                holders[match.ref] = b if a is None else a
            elif (walkover := draw.walkover(a, b)) is not None:
                holders[match.ref] = walkover
            else:
                pairings.append(((match.ref, a, b),
                                 Pairing(a, b, texts[a], texts[b], match.key)))
        results = await judge.play([p for _, p in pairings])
        for (key, _), result in zip(pairings, results, strict=True):
            played[key] = draw.settle(result)
            holders[key[0]] = played[key].winner
    return settle(bracket, draw, played)


def settle(bracket: Bracket, draw: Draw, played: Mapping[MatchKey, MatchResult]
           ) -> KnockoutResult:
    """Walk the bracket over the matches played (every one it needs) to the result.

    Played matches the walk does not reach (a pipelined guess overruled) are `discarded`.
    """
    holders = _leaves(draw)
    used: set[MatchKey] = set()
    records = []
    for number, matches in enumerate(bracket.rounds, start=1):
        results, advanced, walkovers = [], [], []
        for match in matches:
            a, b = (holders[side] for side in match.sides)
            if a is None or b is None:
                holders[match.ref] = b if a is None else a
                advanced.extend(c for c in (a, b) if c is not None)
            elif (winner := draw.walkover(a, b)) is not None:
                holders[match.ref] = winner
                advanced.append(winner)
                loser = b if winner == a else a
                walkovers.append(Walkover(winner, loser, draw.walkover_reason(loser)))
            else:
                used.add((match.ref, a, b))
                results.append(played[(match.ref, a, b)])
                holders[match.ref] = results[-1].winner
        bye = bracket.byes[number - 1]
        if bye is not None and (sitting_out := holders[bye]) is not None:
            advanced.append(sitting_out)
        logger.debug("round %d: %d matches, %d advanced without one",
                     number, len(results), len(advanced))
        records.append(RoundRecord(number, tuple(results), tuple(sorted(advanced)),
                                   tuple(walkovers)))
    winner = holders[bracket.final]
    if winner is None:  # cannot happen: the first copy of a text never leaves its slot
        raise RuntimeError("the bracket ended without a winner")
    discarded = [result for key, result in played.items() if key not in used]
    return knockout_result(len(draw.duplicate_of), winner, draw, records, discarded)


def _leaves(draw: Draw) -> dict[Ref, int | None]:
    """Slot holders before round 1."""
    return {(0, s): c for s, c in enumerate(draw.slots)}


def knockout_result(size: int, winner: int, draw: Draw, rounds: Sequence[RoundRecord],
                    discarded: Sequence[MatchResult] = ()) -> KnockoutResult:
    """Rank the candidates: the winner, then complete entrants before truncated ones (answer
    merging), then losers of later rounds above earlier ones, within a round by preference
    share, then index; each entrant's other members right after its representative."""
    eliminated: dict[int, int] = {}
    for record in rounds:
        for walkover in record.walkovers:
            eliminated[walkover.loser] = record.number
        for match in record.matches:
            eliminated[match.loser] = record.number
    share = preference_shares(size, [m for r in rounds for m in r.matches])
    duplicate_of, demoted = draw.duplicate_of, draw.demoted
    originals = [c for c in range(size) if duplicate_of[c] is None]
    order = sorted(originals, key=lambda c: (c != winner, c in demoted,
                                             -eliminated.get(c, math.inf), -share[c], c))
    members = {e.representative: e.members for e in draw.entrants}
    ranking = tuple(m for c in order for m in members[c])
    preference = tuple(share[c if d is None else d] for c, d in enumerate(duplicate_of))
    return KnockoutResult(size, winner, ranking, preference, tuple(duplicate_of),
                          tuple(rounds), tuple(discarded), draw.entrants)


def preference_shares(size: int, matches: Sequence[MatchResult]) -> dict[int, float]:
    """Per candidate: its share of the weight (votes or probabilities) in the matches it
    played; 0.5 for one that played none."""
    weight: dict[int, float] = Counter()
    weighed: dict[int, int] = Counter()
    for match in matches:
        for side, score in zip(match.pair, match.score, strict=True):
            weight[side] += score
            weighed[side] += match.weighted
    return {c: weight[c] / weighed[c] if weighed[c] else 0.5 for c in range(size)}


def draw_seed(seed: int | None) -> int:
    """The run's seed: the given one, or a fresh one so unseeded runs still differ."""
    return seed if seed is not None else random.SystemRandom().randrange(2**63)
