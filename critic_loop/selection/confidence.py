"""`confidence`: DeepConf's confidence-weighted majority vote (Fu et al., arXiv 2508.15260).

Each candidate votes for its answer with its lowest group confidence as the weight. When no
two candidates share an answer (every group a singleton, as with code), the weighted vote is
simply the most confident candidate. DeepConf's top-η% filter is not applied.
"""

from __future__ import annotations

from critic_loop.config import SelfCriticConfig
from critic_loop.pairwise import PairJudge
from critic_loop.selection.base import Pool, Selection, answer_draw, ranked_selection
from critic_loop.selection.groups import group_weights, has_confidence


async def confidence(pool: Pool, judge: PairJudge, config: SelfCriticConfig) -> Selection:
    """Rank answer groups by summed confidence, then votes, then index; voteless and wholly truncated
    groups last. Without logprobs every weight is 0 and this is `vote`'s ranking (the
    details say `confidence_available: false`). The judge is not called."""
    draw = answer_draw(pool, config)
    order = sorted(group_weights(pool, draw), key=lambda g: (
        g.entrant.ranks_last, -g.confidence, -g.votes, g.representative))
    return ranked_selection("confidence", draw, [g.representative for g in order], details={
        "signal": "lowest_group_confidence", "confidence_available": has_confidence(pool),
        "groups": [g.to_dict() for g in order]})
