"""Who plays in the bracket: candidates merged by identical text, or by their extracted answer.

Text merging (the default) keeps one slot per candidate and empties a later copy's slot, so
the bracket is fixed before any text exists, as the pipelined schedule needs. Answer merging
(`merge="answer"`) waits for every candidate: those with the same answer
(`critic_loop.answers`) become one entrant, the bracket is drawn over entrants only, a
candidate cut off by the token limit never beats a complete one, and an entrant's member
count settles a split before the coin does.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from critic_loop.answers import extract_answer
from critic_loop.engine import Completion
from critic_loop.match import MatchResult, settle_by_vote_count

TRUNCATED = "length"
"""The finish reason of a candidate cut off by its token limit."""


def normalise(text: str) -> str:
    """Text compared for merging: whitespace runs collapsed, ends stripped.

    >>> normalise("  The answer\\n is  4 ") == normalise("The answer is 4")
    True
    """
    return " ".join(text.split())


def find_duplicates(texts: Sequence[str]) -> tuple[int | None, ...]:
    """For each text, the index of the first identical (normalised) text, None if it is first.

    >>> find_duplicates(["a", "b", " a", "b\\n", "c"])
    (None, None, 0, 1, None)
    """
    first: dict[str, int] = {}
    found: list[int | None] = []
    for i, text in enumerate(texts):
        key = normalise(text)
        found.append(first.get(key))
        first.setdefault(key, i)
    return tuple(found)


@dataclass(frozen=True)
class Entrant:
    """One side of the bracket: a representative candidate and every candidate merged in."""

    representative: int
    members: tuple[int, ...]
    """The representative first, then the others by index."""
    answer: str | None = None
    truncated: bool = False
    """Whether every member was cut off by the token limit."""
    voteless: bool = False
    """Whether its group key was None (`Draw.of_keys`): e.g. a program that contradicts an
    output the prompt states. It stands alone, without a vote."""

    @property
    def ranks_last(self) -> bool:
        """Whether it ranks below every entrant that is neither cut off nor voteless."""
        return self.truncated or self.voteless

    def to_dict(self) -> dict[str, Any]:
        out = {"answer": self.answer, "representative": self.representative,
               "members": list(self.members), "truncated": self.truncated}
        if self.voteless:
            out["voteless"] = True
        return out


@dataclass(frozen=True)
class Draw:
    """The bracket's entry list and the rules of the merge that made it."""

    slots: tuple[int | None, ...]
    """The candidate in each bracket slot; None for the empty slot of a merged text copy."""
    duplicate_of: tuple[int | None, ...]
    """Per candidate: the representative it was merged into, None for a representative."""
    entrants: tuple[Entrant, ...]
    merge: str = "text"

    @classmethod
    def of_texts(cls, texts: Sequence[str]) -> Draw:
        """One slot per candidate; a copy's slot is empty, its first occurrence plays."""
        duplicate_of = find_duplicates(texts)
        members: dict[int, list[int]] = {}
        for c, original in enumerate(duplicate_of):
            members.setdefault(c if original is None else original, []).append(c)
        return cls(tuple(c if d is None else None for c, d in enumerate(duplicate_of)),
                   duplicate_of, tuple(Entrant(c, tuple(m)) for c, m in members.items()))

    @classmethod
    def of_answers(cls, completions: Sequence[Completion], fmt: str = "auto",
                   pattern: str | None = None) -> Draw:
        """One slot per distinct answer, in order of first appearance.

        Candidates without an answer are grouped by their text. The representative is the
        lowest-index complete member (finish reason not "length"), else the lowest index:
        the samples are exchangeable, and per-token logprobs exist only when the client
        asked for them, so the index is the choice every request can make.
        """
        answers = [extract_answer(c.text, fmt, pattern) for c in completions]
        keys = [("answer", a) if a is not None else ("text", normalise(c.text))
                for c, a in zip(completions, answers, strict=True)]
        return cls.of_keys(completions, keys, answers)

    @classmethod
    def of_keys(cls, completions: Sequence[Completion], keys: Sequence[Hashable],
                answers: Sequence[str | None] | None = None) -> Draw:
        """One slot per distinct key, in order of first appearance, under the rules of
        answer merging: how `of_answers` groups, with the grouping given (e.g. by what
        candidate programs do on the prompt's examples). `answers` labels the entrants. A
        None key puts its candidate in an entrant of its own that ranks below every keyed
        one."""
        if len(keys) != len(completions):
            raise ValueError(f"{len(keys)} keys for {len(completions)} completions")
        answers = list(answers) if answers is not None else [None] * len(completions)
        groups: dict[Hashable, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(("voteless", i) if key is None else ("key", key), []).append(i)
        entrants = []
        duplicate_of: list[int | None] = [None] * len(completions)
        for members in groups.values():
            cut = [completions[m].finish_reason == TRUNCATED for m in members]
            representative = members[cut.index(False)] if False in cut else members[0]
            for m in members:
                duplicate_of[m] = None if m == representative else representative
            entrants.append(Entrant(representative,
                                    (representative, *(m for m in members if m != representative)),
                                    answers[representative], all(cut),
                                    keys[representative] is None))
        return cls(tuple(e.representative for e in entrants), tuple(duplicate_of),
                   tuple(entrants), merge="answer")

    @cached_property
    def _entrant_of(self) -> dict[int, Entrant]:
        return {e.representative: e for e in self.entrants}

    @property
    def demoted(self) -> frozenset[int]:
        """Representatives ranked below every complete entrant with a vote (answer merging
        only)."""
        if self.merge != "answer":
            return frozenset()
        return frozenset(e.representative for e in self.entrants if e.ranks_last)

    def walkover(self, a: int, b: int) -> int | None:
        """The winner of `a` against `b` without judging: under answer merging, the complete
        side against one the token limit cut off or one without a vote; None when the judge
        must decide."""
        if self.merge != "answer":
            return None
        cut_a, cut_b = self._entrant_of[a].ranks_last, self._entrant_of[b].ranks_last
        return None if cut_a == cut_b else (b if cut_a else a)

    def walkover_reason(self, loser: int) -> str:
        """Why `loser` lost its walkover: 'truncated', else 'voteless'."""
        return "truncated" if self._entrant_of[loser].truncated else "voteless"

    def settle(self, result: MatchResult) -> MatchResult:
        """A judged match under this draw's rules: answer merging lets vote counts (members
        per entrant) settle what would go to the coin."""
        if self.merge != "answer":
            return result
        a, b = result.pair
        return settle_by_vote_count(result, (len(self._entrant_of[a].members),
                                             len(self._entrant_of[b].members)))
