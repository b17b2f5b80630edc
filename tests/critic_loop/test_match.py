"""The rules of one match: fast mode's position calibration and the judge's order agreement.

A fast judge that always says "1" with a content signal underneath (logit P("1") = bias ±
preference) is decided by its content preference once the position bias is removed; the
raw votes pick by position wherever the orders are unbalanced.
"""

from __future__ import annotations

import math
import random

import pytest

from critic_loop.best_of_n import best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import SamplingOptions
from critic_loop.match import Coin, Judgment, content_preference, decide
from tests.support.simulated_judges import SimulatedEngine, biased_judge


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def fast(order: tuple[int, int], log_odds: float) -> Judgment:
    """A fast judgment with logit P("1") = log_odds; its raw verdict is the likelier digit."""
    p1 = sigmoid(log_odds)
    return Judgment(order, order[0] if p1 >= 0.5 else order[1], None, "1", (p1, 1 - p1))


def test_the_content_preference_is_half_the_difference_of_the_orders_log_odds() -> None:
    bias, preference = 2.5, 0.7
    judgments = [fast((0, 1), bias + preference), fast((1, 0), bias - preference)]
    assert content_preference((0, 1), judgments) == pytest.approx(preference)
    assert content_preference((1, 0), judgments) == pytest.approx(-preference)


def test_an_order_judged_more_often_does_not_weigh_more() -> None:
    bias, preference = 2.5, 0.7
    balanced = [fast((0, 1), bias + preference), fast((1, 0), bias - preference)]
    odd = [*balanced, fast((0, 1), bias + preference)]  # K = 3, one order twice
    assert content_preference((0, 1), odd) == pytest.approx(content_preference((0, 1), balanced))


def test_one_order_is_corrected_by_the_known_prior_else_taken_raw() -> None:
    judgments = [fast((1, 0), 3.0 - 0.5)]  # only candidate 1 was shown first
    assert content_preference((0, 1), judgments, prior=3.0) == pytest.approx(0.5)
    assert content_preference((0, 1), judgments) == pytest.approx(-2.5)
    assert content_preference((0, 1), [Judgment((0, 1), None, None, "?", None)]) is None


def test_certain_digits_in_both_orders_cancel_to_no_preference() -> None:
    always_one = [Judgment(o, o[0], None, "1", (1.0, 0.0)) for o in ((0, 1), (1, 0))]
    assert content_preference((0, 1), always_one) == 0.0
    match = decide((0, 1), always_one, None, by_probability=True, coin=Coin("c"),
                   calibrate=True)
    assert match.decided_by == "coin" and match.score == (1.0, 1.0)


def test_at_odd_k_calibration_picks_the_content_where_the_raw_votes_pick_position() -> None:
    bias, preference = 3.0, 0.8  # always says "1"; prefers candidate 1 underneath
    regular = [fast((0, 1), bias - preference), fast((1, 0), bias + preference),
               fast((0, 1), bias - preference)]
    raw = decide((0, 1), regular, None, by_probability=True, coin=Coin("c"))
    calibrated = decide((0, 1), regular, None, by_probability=True, coin=Coin("c"),
                        calibrate=True)
    assert (raw.winner, raw.decided_by) == (0, "majority")  # shown first twice
    assert (calibrated.winner, calibrated.decided_by) == (1, "probability")
    assert calibrated.score == pytest.approx((3 * sigmoid(-preference), 3 * sigmoid(preference)))
    assert calibrated.outcome == raw.outcome == "majority"  # outcomes stay the raw votes'


def test_at_k_2_calibration_and_the_raw_sum_pick_the_same_winner() -> None:
    rng = random.Random(0)
    for _ in range(500):
        regular = [fast((0, 1), rng.gauss(0, 3)), fast((1, 0), rng.gauss(0, 3))]
        raw = decide((0, 1), regular, None, by_probability=True, coin=Coin("c"))
        calibrated = decide((0, 1), regular, None, by_probability=True, coin=Coin("c"),
                            calibrate=True)
        assert raw.winner == calibrated.winner
        assert raw.decided_by == calibrated.decided_by


async def best_wins(config: SelfCriticConfig, trials: int, *, n: int = 8, bias: float = 3.0,
                    preference: float = 0.8) -> int:
    """How often the content-preferred candidate wins best-of-n against a judge that
    always says "1" (position bias `bias` on top of its content preference)."""
    wins = 0
    for trial in range(trials):
        rng = random.Random(trial)
        best = rng.randrange(n)
        texts = ["BEST" if i == best else f"candidate {i}" for i in range(n)]
        engine = SimulatedEngine(biased_judge("BEST", bias, preference), rng, texts, soft=True)
        run = SelfCriticConfig(**{**config.to_dict(), "candidates": n, "seed": trial})
        result = await best_of_n(engine, "prompt", "Which?", SamplingOptions(), run,
                                 f"t{trial}")
        wins += result.winner.index == best
    return wins


@pytest.mark.parametrize("config", [
    SelfCriticConfig(judge="fast", comparisons=3),
    SelfCriticConfig(judge="fast", comparisons=1, position_prior=3.0),
], ids=["odd-k", "one-order-with-prior"])
async def test_a_position_biased_judge_picks_the_content_preferred_answer(
        config: SelfCriticConfig) -> None:
    trials = 200
    calibrated = await best_wins(config, trials)
    raw = await best_wins(SelfCriticConfig(**{**config.to_dict(),
                                              "calibrate_position": False}), trials)
    assert calibrated == trials
    # raw: every match goes to whoever is shown first (a seeded coin), so the best of 8
    # wins its three matches with chance 1/8
    assert raw < trials / 4, raw


async def test_one_order_without_a_prior_stays_the_raw_judgment() -> None:
    config = SelfCriticConfig(judge="fast", comparisons=1)
    assert await best_wins(config, 200) < 50


def test_order_agreement_needs_a_valid_verdict_in_both_orders() -> None:
    def said(order: tuple[int, int], verdict: int | None) -> Judgment:
        return Judgment(order, verdict, None, "", None)

    def agreement(*judgments: Judgment) -> bool | None:
        return decide((0, 1), judgments, None, by_probability=False,
                      coin=Coin("c")).order_agreement

    assert agreement(said((0, 1), 1), said((1, 0), 1)) is True
    assert agreement(said((0, 1), 0), said((1, 0), 1)) is False  # each said "1": position
    assert agreement(said((0, 1), 1), said((1, 0), None)) is None
    assert agreement(said((0, 1), 1), said((0, 1), 1)) is None
    assert agreement(said((0, 1), 1), said((1, 0), 1), said((0, 1), 0)) is False
