"""The Wilson interval against hand-computed values and its symmetry."""

from __future__ import annotations

import math

import pytest

from evaluation.stats import Z95, ratio, wilson_interval


def test_known_values() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0 and high == pytest.approx(Z95**2 / (10 + Z95**2))
    assert wilson_interval(10, 10) == pytest.approx((10 / (10 + Z95**2), 1.0))
    low, high = wilson_interval(50, 100)
    half = Z95 * math.sqrt(0.25 / 100 + Z95**2 / 40000) / (1 + Z95**2 / 100)
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half))
    assert (low, high) == pytest.approx((0.4038, 0.5962), abs=1e-4)


@pytest.mark.parametrize(("k", "n"), [(1, 3), (7, 20), (33, 100)])
def test_symmetric_and_contains_the_estimate(k: int, n: int) -> None:
    low, high = wilson_interval(k, n)
    mirrored = wilson_interval(n - k, n)
    assert (low, high) == pytest.approx((1 - mirrored[1], 1 - mirrored[0]))
    assert 0 <= low <= k / n <= high <= 1


def test_rejects_impossible_counts_and_ratio_guards() -> None:
    with pytest.raises(ValueError):
        wilson_interval(5, 3)
    assert ratio(0.5, 0.0) is None and ratio(None, 1.0) is None and ratio(0.25, 0.5) == 0.5
