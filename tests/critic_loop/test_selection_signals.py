"""Confidence signals on hand-made logprobs, checked by hand and against DeepConf's code."""

from __future__ import annotations

import random

import numpy as np
import pytest

from critic_loop.engine import TokenLogprob
from critic_loop.selection.signals import (
    candidate_signals,
    lowest_group_confidence,
    token_confidence,
)
from critic_loop.stopping import GroupConfidence


def deepconf_confidences(tokens: list[TokenLogprob]) -> list[float]:
    """facebookresearch/deepconf utils.compute_confidence, on our records."""
    return [round(-np.mean([lp for _, lp in t.top]), 3) for t in tokens if t.top]


def deepconf_least_grouped(confs: list[float], group_size: int) -> list[float]:
    """facebookresearch/deepconf utils.compute_least_grouped, verbatim but for names."""
    if len(confs) < group_size:
        return [sum(confs) / len(confs)] if confs else [0]
    sliding_means = []
    for i in range(len(confs) - group_size + 1):
        window = confs[i:i + group_size]
        sliding_means.append(round(sum(window) / len(window), 3))
    return sliding_means


def token(logprob: float, *top: float) -> TokenLogprob:
    return TokenLogprob("t", logprob, tuple((f"a{i}", lp) for i, lp in enumerate(top)))


def test_signals_by_hand() -> None:
    # token confidences: -(−0.5 − 1.5)/2 = 1, then 3, 2, 0.5, 4
    tokens = [token(-0.5, -0.5, -1.5), token(-1.0, -1.0, -5.0), token(-0.2, -0.2, -3.8),
              token(-0.1, -0.1, -0.9), token(-2.0, -2.0, -6.0)]
    assert [token_confidence(t) for t in tokens] == [1.0, 3.0, 2.0, 0.5, 4.0]
    signals = candidate_signals(tokens, window=2, tail=2)
    assert signals is not None and signals.tokens == 5
    assert signals.mean_logprob == pytest.approx(-3.8 / 5)
    assert signals.mean_confidence == pytest.approx(10.5 / 5)
    # windows of 2: 2, 2.5, 1.25, 2.25 -> the lowest is 1.25
    assert signals.lowest_group_confidence == pytest.approx(1.25)
    assert signals.tail_confidence == pytest.approx(2.25)
    # shorter than the window: the mean of all (DeepConf does the same)
    assert candidate_signals(tokens, window=32).lowest_group_confidence == pytest.approx(2.1)


def test_a_peaked_distribution_is_more_confident_than_a_flat_one() -> None:
    peaked = token(-0.01, -0.01, -6.0, -7.0)
    flat = token(-1.1, -1.05, -1.1, -1.15)
    assert token_confidence(peaked) > token_confidence(flat)


def test_without_alternatives_only_the_mean_logprob_is_known() -> None:
    signals = candidate_signals([token(-0.5), token(-1.5, -1.5, -2.0)])
    assert signals is not None and signals.mean_logprob == -1.0
    assert signals.mean_confidence is signals.lowest_group_confidence is None
    assert candidate_signals(None) is None and candidate_signals(()) is None


def test_an_impossible_alternative_stays_a_finite_number() -> None:
    signals = candidate_signals([token(-0.1, -0.1, float("-inf"))])
    assert signals is not None and signals.lowest_group_confidence == pytest.approx(50.05)
    assert signals.to_dict()["lowest_group_confidence"] == 50.05


def test_parity_with_deepconf_on_random_logprobs() -> None:
    rng = random.Random(7)
    for _ in range(50):
        length, window = rng.randint(1, 60), rng.choice((1, 4, 16, 32))
        tokens = []
        for _ in range(length):
            top = sorted((-rng.expovariate(0.5) for _ in range(20)), reverse=True)
            tokens.append(token(top[0], *top))
        ours = [token_confidence(t) for t in tokens]
        assert ours == pytest.approx(deepconf_confidences(tokens), abs=5e-4)
        expected = min(deepconf_least_grouped(ours, window))
        assert lowest_group_confidence(ours, window) == pytest.approx(expected, abs=5e-4)


def test_online_group_confidence_agrees_with_the_offline_signals() -> None:
    """Stopping (online, token by token) and selection (offline) read one confidence."""
    rng = random.Random(11)
    for _ in range(30):
        length, window = rng.randint(1, 50), rng.choice((1, 4, 16))
        tokens = [token(-rng.expovariate(1.0), *sorted(
            (-rng.expovariate(0.5) for _ in range(5)), reverse=True)) for _ in range(length)]
        online = GroupConfidence(window)
        for start in range(0, length, 3):  # deltas of a few tokens, as the engine streams
            online.add(tokens[start:start + 3])
        offline = candidate_signals(tokens, window=window)
        assert offline is not None
        assert online.lowest == pytest.approx(offline.lowest_group_confidence)


def test_tokens_without_alternatives_carry_no_confidence_online() -> None:
    """A token whose engine gave no top-k is skipped, never scored by its own logprob (a
    doubtful chosen token, -logprob 5, would otherwise look five times as confident)."""
    online = GroupConfidence(window=2)
    online.add([token(-5.0), token(-0.1, -0.1, -2.1)])
    assert online.tokens == 1 and online.lowest == pytest.approx(1.1)
    bare = GroupConfidence(window=2)
    bare.add([token(-5.0)])
    assert bare.lowest is None
