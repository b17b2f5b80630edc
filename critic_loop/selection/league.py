"""`league`: every distinct entrant plays every other once; the best win rate wins.

A round robin costs U(U−1)/2 matches for U entrants (a knockout U−1), all sent in one
engine call, so it is for small N (`MAX_LEAGUE_CANDIDATES`). In return no entrant is out
after one bad verdict: its rank is its win rate against the whole field.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from critic_loop.config import SelfCriticConfig
from critic_loop.pairwise import Pairing, PairJudge
from critic_loop.selection.base import Pool, Selection, merged_draw, ranked_selection
from critic_loop.tournament import RoundRecord, Walkover, preference_shares


async def league(pool: Pool, judge: PairJudge, config: SelfCriticConfig) -> Selection:
    """Rank entrants (by `config.merge`) by wins, then share of the judges' weight, then
    member count, then index; entrants the token limit cut off rank below complete ones
    and lose to them unjudged, as in the knockout."""
    draw = merged_draw(pool, config)
    texts = pool.texts
    entrants = {e.representative: e for e in draw.entrants}
    wins: Counter[int] = Counter()
    walkovers: list[Walkover] = []
    pairings: list[Pairing] = []
    for a, b in combinations(sorted(entrants), 2):
        if (winner := draw.walkover(a, b)) is not None:
            wins[winner] += 1
            loser = b if winner == a else a
            walkovers.append(Walkover(winner, loser, draw.walkover_reason(loser)))
        else:
            pairings.append(Pairing(a, b, texts[a], texts[b], f"l-{a}-{b}"))
    matches = tuple(draw.settle(m) for m in await judge.play(pairings))
    for match in matches:
        wins[match.winner] += 1
    share = preference_shares(len(texts), matches)
    order = sorted(entrants, key=lambda c: (entrants[c].ranks_last, -wins[c], -share[c],
                                            -len(entrants[c].members), c))
    games = len(entrants) - 1
    table = [{**entrants[c].to_dict(), "wins": wins[c], "games": games,
              "win_rate": round(wins[c] / games, 6) if games else 1.0,
              "preference": round(share[c], 6)} for c in order]
    rounds = ((RoundRecord(1, matches, (), tuple(walkovers)),) if matches or walkovers else ())
    return ranked_selection("league", draw, order, rounds, {"entrants": table})
