"""Small statistics for accuracies: confidence intervals, pass@k and safe ratios.

Accuracies of counted successes use the Wilson score interval rather than the normal
approximation, because eval sets are small and accuracies sit near 0 or 1, where the
normal interval leaves [0, 1] or collapses to a point. A mean of per-item scores that are
not 0/1 counts (a critic's per-pair score averages two orders) uses the normal
approximation of the mean (`mean_ci95`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959964
CI_METHOD = "Wilson score interval, 95%"


def wilson_interval(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for `successes` out of `total`.

    >>> tuple(round(x, 3) for x in wilson_interval(8, 10))
    (0.49, 0.943)
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if total < 0 or not 0 <= successes <= total:
        raise ValueError(f"need 0 <= successes <= total, got {successes} of {total}")
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from n samples of which c are right (Chen et al. 2021,
    arXiv 2107.03374): 1 - C(n-c, k) / C(n, k), the chance that k of the n drawn without
    replacement hold a right one.

    >>> pass_at_k(8, 2, 1), pass_at_k(8, 2, 8), pass_at_k(8, 0, 4), round(pass_at_k(8, 2, 4), 4)
    (0.25, 1.0, 0.0, 0.7857)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def paired_difference(diffs: Sequence[float]) -> tuple[float, float, float]:
    """The mean of paired differences (B − A per question, in [−1, 1]) and its normal 95%
    interval, unclipped: what two strategies or models on the same questions differ by.

    >>> paired_difference([1.0, 0.0, 0.0, 0.0])
    (0.25, -0.239991, 0.739991)
    """
    n = len(diffs)
    centre = sum(diffs) / n
    if n < 2:
        return centre, centre, centre
    half = Z95 * math.sqrt(sum((d - centre) ** 2 for d in diffs) / (n - 1) / n)
    return round(centre, 6), round(centre - half, 6), round(centre + half, 6)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Normal-approximation 95% CI of a mean, clipped to [0, 1].

    Per-pair scores are the unit, so the two (correlated) orders of a pair count once.

    >>> mean_ci95([1.0, 0.0, 1.0, 0.0])
    (0.0, 1.0)
    >>> mean_ci95([1.0, 1.0])
    (1.0, 1.0)
    """
    n = len(values)
    centre = sum(values) / n
    var = sum((v - centre) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    half = Z95 * math.sqrt(var / n)
    return (round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6))
