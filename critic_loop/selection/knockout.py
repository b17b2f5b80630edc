"""`knockout`: the seeded single-elimination bracket (`critic_loop.tournament`), as before."""

from __future__ import annotations

from critic_loop.config import SelfCriticConfig
from critic_loop.pairwise import PairJudge
from critic_loop.selection.base import Pool, Selection, merged_draw
from critic_loop.tournament import Bracket, KnockoutResult, play_rounds


async def knockout(pool: Pool, judge: PairJudge, config: SelfCriticConfig) -> Selection:
    """Play the bracket round by round over the entrants `config.merge` makes."""
    draw = merged_draw(pool, config)
    result = await play_rounds(Bracket.build(len(draw.slots), judge.seed), judge, pool.texts,
                               draw)
    return knockout_selection(result)


def knockout_selection(result: KnockoutResult) -> Selection:
    """A knockout played by any schedule (the pipelined one included) as a selection; its
    rounds are the trace's own, so it adds no details."""
    return Selection("knockout", result)
