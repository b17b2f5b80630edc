"""Answer groups and their weight: the votes (members) and the summed confidence of each.

`vote`, `confidence` and `hybrid` rank the same groups (`critic_loop.entrants.Draw.
of_answers`: same extracted answer, else same text) by different keys over these numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from critic_loop.entrants import Draw, Entrant
from critic_loop.selection.base import Pool


@dataclass(frozen=True)
class GroupWeight:
    """One answer group: its entrant, its votes and its confidence-weighted vote."""

    entrant: Entrant
    votes: int
    confidence: float
    """Σ of the members' lowest group confidence (DeepConf's weighted vote); a member
    without logprobs adds 0."""

    @property
    def representative(self) -> int:
        return self.entrant.representative

    def to_dict(self) -> dict[str, Any]:
        return {**self.entrant.to_dict(), "votes": self.votes,
                "confidence": round(self.confidence, 6)}


def group_weights(pool: Pool, draw: Draw) -> list[GroupWeight]:
    """Every entrant of `draw` with its votes and summed confidence, in the draw's order."""
    return [GroupWeight(e, len(e.members),
                        math.fsum(c for m in e.members if (c := pool.confidence(m)) is not None))
            for e in draw.entrants]


def has_confidence(pool: Pool) -> bool:
    """Whether any candidate carries a confidence (the engine returned top-k logprobs)."""
    return any(pool.confidence(i) is not None for i in range(len(pool.completions)))
