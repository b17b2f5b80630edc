"""The selection strategies by name (`self_critic.select`), as TRL keeps its reward functions.

`best_of_n` looks a strategy up here; `SelfCriticConfig` validates the name against
`critic_loop.config.SELECTS`, which must list exactly these keys.
"""

from __future__ import annotations

from collections.abc import Mapping

from critic_loop.config import SelfCriticConfig
from critic_loop.pairwise import PairJudge
from critic_loop.selection.base import Pool, Selection, Strategy
from critic_loop.selection.confidence import confidence
from critic_loop.selection.hybrid import hybrid
from critic_loop.selection.knockout import knockout
from critic_loop.selection.league import league
from critic_loop.selection.vote import vote

STRATEGIES: Mapping[str, Strategy] = {s.name: s for s in (
    Strategy("knockout", knockout),
    Strategy("league", league),
    # vote reads confidence only to break ties between equally voted answers
    Strategy("vote", vote, needs_confidence=True),
    Strategy("confidence", confidence, needs_confidence=True),
    Strategy("hybrid", hybrid, needs_confidence=True),
)}


def get_strategy(name: str) -> Strategy:
    """The strategy called `name`; ValueError listing the allowed names otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        allowed = ", ".join(repr(s) for s in STRATEGIES)
        raise ValueError(f"select must be one of {allowed}, got {name!r}") from None


def groups_answers(config: SelfCriticConfig) -> bool:
    """Whether `config`'s strategy groups candidates into answers (and so reads a `Pool`'s
    `group_by`): vote, confidence and hybrid always, knockout and league with merge
    'answer'."""
    return config.select in ("vote", "confidence", "hybrid") or config.merge == "answer"


async def select(pool: Pool, judge: PairJudge, config: SelfCriticConfig) -> Selection:
    """Run the strategy `config.select` names over `pool`."""
    return await get_strategy(config.select).run(pool, judge, config)
