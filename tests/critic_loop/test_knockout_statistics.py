"""Statistical tests: the knockout picks the best candidate as often as theory says.

A simulated judge prefers the better of two candidates with probability p in either order.
Over seeded trials through `best_of_n` (the real code path, on a fast simulated engine),
the best candidate's win rate must match the exact probability for this bracket within a
99% confidence interval, and meet the Chen et al. bound where it is informative. A judge
that only prefers the first-shown response must not move anyone's win rate when K is even.
"""

from __future__ import annotations

import math
import random

import pytest

from critic_loop.best_of_n import best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.critique import rank_responses
from critic_loop.engine import SamplingOptions
from tests.support.simulated_judges import (
    SimulatedEngine,
    knockout_win_probability,
    match_win_probability,
    position_judge,
    quality_judge,
)

Z_99 = 2.5758


def within_99(wins: int, trials: int, expected: float) -> bool:
    """Whether `wins` of `trials` is inside the 99% normal interval around `expected`."""
    half_width = Z_99 * math.sqrt(expected * (1 - expected) / trials) + 0.5 / trials
    return abs(wins / trials - expected) <= half_width


async def best_wins(n: int, config: SelfCriticConfig, p: float, trials: int,
                    invalid_rate: float = 0.0) -> int:
    """How often the best of n candidates (at a random position) wins, over seeded trials."""
    wins = 0
    for trial in range(trials):
        rng = random.Random(trial)
        best = rng.randrange(n)
        texts = ["BEST" if i == best else f"candidate {i}" for i in range(n)]
        engine = SimulatedEngine(quality_judge("BEST", p), rng, texts, invalid_rate)
        run_config = SelfCriticConfig(**{**config.to_dict(), "candidates": n, "seed": trial})
        result = await best_of_n(engine, "prompt", "Which?", SamplingOptions(), run_config,
                                 f"t{trial}")
        wins += result.winner.index == best
    return wins


@pytest.mark.parametrize(("n", "judge", "k", "p", "temperature", "invalid", "trials"), [
    (8, "reason", 2, 0.8, 0.7, 0.0, 1500),   # splits take the extra judgment
    (6, "reason", 2, 0.75, 0.0, 0.0, 1500),  # greedy default: splits go to the coin
    (5, "fast", 3, 0.7, 0.0, 0.0, 1500),     # byes in rounds 1 and 2
    (7, "fast", 4, 0.65, 0.0, 0.1, 1200),    # invalid votes, ties on summed probabilities
    (3, "reason", 1, 0.8, 0.0, 0.2, 2000),   # K = 1: the extra judgment asks the other order
])
async def test_best_candidate_wins_as_often_as_the_exact_probability(
        n: int, judge: str, k: int, p: float, temperature: float, invalid: float,
        trials: int) -> None:
    config = SelfCriticConfig(judge=judge, comparisons=k, judge_temperature=temperature)
    correct = (1 - invalid) * p
    tie_win = correct + invalid / 2 if config.extra_judgment else 0.5
    # A greedy judge generates each order once and repeats it (K/2 votes per order): even K
    # votes like K = 2, odd K (without invalid votes) like its first order alone.
    distinct = k if k <= 2 or not config.greedy_judge else 2 - k % 2
    expected = knockout_win_probability(n, match_win_probability(distinct, p, invalid, tie_win))
    wins = await best_wins(n, config, p, trials, invalid)
    assert within_99(wins, trials, expected), (wins / trials, expected)


async def test_many_comparisons_meet_the_chen_bound() -> None:
    n, k, p, trials = 8, 16, 0.9, 250
    config = SelfCriticConfig(judge="reason", comparisons=k, judge_temperature=1.0)
    expected = knockout_win_probability(n, match_win_probability(k, p, 0.0, p))
    bound = 1 - math.ceil(math.log2(n)) * math.exp(-2 * k * (p - 0.5) ** 2)
    assert 0.98 < bound < expected  # the bound is informative here, and exact beats it
    wins = await best_wins(n, config, p, trials)
    assert within_99(wins, trials, expected), (wins / trials, expected)
    assert wins / trials >= bound


def test_exact_probability_matches_simple_cases() -> None:
    # One judgment, no ties: a match is won with p; three rounds for eight candidates.
    assert knockout_win_probability(8, 0.7) == pytest.approx(0.7**3)
    # Three candidates: a bye with 1/3, then a final.
    assert knockout_win_probability(3, 0.6) == pytest.approx((1 / 3 + 2 / 3 * 0.6) * 0.6)
    # K = 2: both right, or a split (2p(1-p)) decided by a fair coin.
    assert match_win_probability(2, 0.8, 0.0, 0.5) == pytest.approx(0.64 + 0.32 * 0.5)


async def first_slot_wins(n: int, config: SelfCriticConfig, b: float, trials: int) -> int:
    """How often candidate 0, always shown first in its round-1 match, wins under bias b."""
    wins = 0
    for trial in range(trials):
        engine = SimulatedEngine(position_judge(b), random.Random(trial))
        run_config = SelfCriticConfig(**{**config.to_dict(), "seed": trial})
        responses = [f"response {i}" for i in range(n)]
        result = await rank_responses(engine, "Which?", responses, run_config, f"t{trial}")
        wins += result.ranking[0] == 0
    return wins


@pytest.mark.parametrize(("judge", "temperature"), [("reason", 0.7), ("reason", 0.0),
                                                    ("fast", 0.0)])
async def test_position_bias_cancels_with_even_k(judge: str, temperature: float) -> None:
    n, b, trials = 8, 0.9, 1000
    config = SelfCriticConfig(judge=judge, comparisons=2, judge_temperature=temperature)
    wins = await first_slot_wins(n, config, b, trials)
    assert within_99(wins, trials, 1 / n), wins / trials


@pytest.mark.parametrize("comparisons", [1, 3])
async def test_odd_k_is_position_fair(comparisons: int) -> None:
    """With odd K one order gets one judgment more; the match's seeded coin picks which, so
    under a pure position bias slot 0 wins as often as any slot (1/N). Before the coin,
    slot 0 was always shown first and won with b**3 = 0.73 at K = 1."""
    n, b, trials = 8, 0.9, 1000
    wins = await first_slot_wins(n, SelfCriticConfig(comparisons=comparisons), b, trials)
    assert within_99(wins, trials, 1 / n), wins / trials
    assert not within_99(wins, trials, b**3)


async def test_odd_k_first_order_is_seeded_per_match() -> None:
    """The same seed shows the same order first; both orders occur across matches."""
    engine, replay = (SimulatedEngine(position_judge(0.9), random.Random(0)) for _ in "ab")
    config = SelfCriticConfig(comparisons=1, seed=7)
    responses = [f"response {i}" for i in range(8)]
    first = await rank_responses(engine, "Which?", responses, config, "a")
    again = await rank_responses(replay, "Which?", responses, config, "b")
    assert first.ranking == again.ranking
    shown_first = [request.prompt.split("[Response 1]\n")[1].split("\n")[0]
                   for call in engine.generate_calls[:1] for request in call]
    matches = [(f"response {2 * m}", f"response {2 * m + 1}") for m in range(4)]
    assert {s == a for s, (a, _) in zip(shown_first, matches, strict=True)} == {True, False}
