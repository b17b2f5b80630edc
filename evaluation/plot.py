"""The accuracy-against-N figure (PNG), for people who would rather look than read.

One line per selection strategy against N on a log2 axis, with its 95% CI as error bars
(nudged sideways so they do not hide each other); strategies without N (greedy, one
sample) are horizontal reference lines.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from evaluation.report import Row

logger = logging.getLogger(__name__)


def plot_accuracy(rows: Sequence[Row], path: Path, title: str) -> Path | None:
    """Write the figure to `path`; None (with a warning) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'selfcritic[eval]'); "
                       "no plot written")
        return None
    lines: dict[str, list[Row]] = defaultdict(list)
    flat: list[Row] = []
    for row in rows:
        if row.accuracy is None or row.ci95 is None:
            continue
        if row.strategy in ("greedy", "sample"):
            flat.append(row)
        else:
            label = row.strategy if row.k is None else f"{row.strategy} (K={row.k})"
            lines[label].append(row)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, (label, points) in enumerate(lines.items()):
        points.sort(key=lambda r: r.n)
        # A small horizontal offset per line keeps overlapping error bars apart.
        shift = 2 ** ((index - (len(lines) - 1) / 2) * 0.03)
        accuracy = [r.accuracy or 0.0 for r in points]
        below = [a - (r.ci95 or (a, a))[0] for a, r in zip(accuracy, points, strict=True)]
        above = [(r.ci95 or (a, a))[1] - a for a, r in zip(accuracy, points, strict=True)]
        style = "--" if label == "pass@N" else "-"
        axes.errorbar([r.n * shift for r in points], accuracy, yerr=[below, above], marker="o",
                      linestyle=style, capsize=3, label=label)
    for row, style in zip(flat, (":", "-."), strict=False):  # greedy, sample
        axes.axhline(row.accuracy or 0.0, linestyle=style, color="grey",
                     label=f"{row.strategy} ({row.accuracy:.0%})")
    ns = sorted({r.n for group in lines.values() for r in group})
    if ns:
        axes.set_xscale("log", base=2)
        axes.set_xticks(ns, [str(n) for n in ns])
    axes.set_xlabel("N (candidates per question)")
    axes.set_ylabel("accuracy")
    axes.set_ylim(0, 1)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
