"""`vote`: the answer most candidates gave (majority voting, self-consistency)."""

from __future__ import annotations

from critic_loop.config import SelfCriticConfig
from critic_loop.pairwise import PairJudge
from critic_loop.selection.base import Pool, Selection, answer_draw, ranked_selection
from critic_loop.selection.groups import group_weights


async def vote(pool: Pool, judge: PairJudge, config: SelfCriticConfig) -> Selection:
    """Rank answer groups by votes; ties go to the higher summed confidence, then the
    lower index (deterministic); groups the token limit cut off entirely, and voteless ones, rank last.
    The judge is not called."""
    draw = answer_draw(pool, config)
    order = sorted(group_weights(pool, draw), key=lambda g: (
        g.entrant.ranks_last, -g.votes, -g.confidence, g.representative))
    return ranked_selection("vote", draw, [g.representative for g in order],
                            details={"groups": [g.to_dict() for g in order]})
