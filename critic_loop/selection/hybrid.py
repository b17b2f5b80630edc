"""`hybrid`: votes and confidence rank the answer groups; the judge weighs in on the top two
only, and only as much as it has been measured to be reliable.

The rule, for N candidates in answer groups g with v_g votes and summed confidence c_g
(`critic_loop.selection.groups`):

    score_g = (v_g / N + c_g / Σ c) / 2          (c_g / Σ c := v_g / N without logprobs)

Groups rank by score (then votes, confidence, index; voteless and wholly truncated groups last). Then
the pairwise judge plays one match between the top two, A and B, and p is A's share of the
match's weight (probabilities in fast mode, votes in reason mode; 0.5 with no valid vote).
With w = `config.judge_weight` (the judge's reliability, 2·p_comp − 1, in [0, 1]):

    final_A = score_A + w·(p − 0.5),   final_B = score_B + w·(0.5 − p)

and B goes first only if final_B > final_A. Scores lie in [0, 1], so a perfectly reliable
judge (w = 1) that is sure (p = 0 or 1) overrules any margin short of 1, a judge at w = 0.5
one below 0.5, and a judge with w = 0 is not called at all. A position-biased judge,
saying "Response 1" in both orders, gives p = 0.5 and changes nothing.
"""

from __future__ import annotations

import math
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.match import MatchResult
from critic_loop.pairwise import Pairing, PairJudge
from critic_loop.selection.base import Pool, Selection, answer_draw, ranked_selection
from critic_loop.selection.groups import GroupWeight, group_weights
from critic_loop.tournament import RoundRecord


async def hybrid(pool: Pool, judge: PairJudge, config: SelfCriticConfig) -> Selection:
    """Rank by vote and confidence shares, then let the judge (weighted) settle the top two."""
    draw = answer_draw(pool, config)
    groups = group_weights(pool, draw)
    n = len(pool.completions)
    total = math.fsum(g.confidence for g in groups)
    score = {g.representative: (g.votes / n + (g.confidence / total if total > 0
                                               else g.votes / n)) / 2 for g in groups}
    order = sorted(groups, key=lambda g: (g.entrant.ranks_last, -score[g.representative],
                                          -g.votes, -g.confidence, g.representative))
    reps = [g.representative for g in order]
    details: dict[str, Any] = {"judge_weight": config.judge_weight, "groups": [
        {**g.to_dict(), "score": round(score[g.representative], 6)} for g in order]}
    rounds: tuple[RoundRecord, ...] = ()
    if len(reps) >= 2 and config.judge_weight > 0 and draw.walkover(reps[0], reps[1]) is None:
        a, b = reps[0], reps[1]
        [match] = await judge.play([Pairing(a, b, pool.texts[a], pool.texts[b], "h-final")])
        match = draw.settle(match)
        rounds = (RoundRecord(1, (match,), ()),)
        details["final"] = _final(order[0], order[1], score, match, config.judge_weight)
        if details["final"]["winner"] == b:
            reps[0], reps[1] = b, a
    return ranked_selection("hybrid", draw, reps, rounds, details)


def _final(first: GroupWeight, second: GroupWeight, score: dict[int, float],
           match: MatchResult, weight: float) -> dict[str, Any]:
    """The top two's scores before and after the judge's weighted say."""
    a, b = first.representative, second.representative
    p = match.score[0] / match.weighted if match.weighted else 0.5
    final_a, final_b = score[a] + weight * (p - 0.5), score[b] + weight * (0.5 - p)
    return {"pair": [a, b], "scores": [round(score[a], 6), round(score[b], 6)],
            "judge_preference": round(p, 6),
            "final_scores": [round(final_a, 6), round(final_b, 6)],
            "winner": b if final_b > final_a else a}
