"""The learning-curve figure: held-out judge accuracy and training reward against step.

Reads a run's `metrics.jsonl` (the `eval/...` records `HeldOutCurve` writes beside the
training logs) and draws a PNG, for people who would rather look than read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def read_curve(metrics_path: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) series: held-out accuracy, K=2 match accuracy, greedy policy accuracy
    (trainer/policy_curve.py) and training reward."""
    series: dict[str, list[tuple[int, float]]] = {
        "held-out accuracy": [], "held-out K=2 match accuracy": [],
        "policy greedy accuracy (held-out)": [], "training reward": []}
    for line in metrics_path.read_text().splitlines():
        record: dict[str, Any] = json.loads(line)
        step = int(record.get("step", 0))
        if "eval/accuracy" in record:
            series["held-out accuracy"].append((step, record["eval/accuracy"]))
            series["held-out K=2 match accuracy"].append((step, record["eval/match_accuracy"]))
        elif "policy/accuracy" in record:
            series["policy greedy accuracy (held-out)"].append((step, record["policy/accuracy"]))
        elif isinstance(record.get("reward"), (int, float)):
            series["training reward"].append((step, record["reward"]))
    return series


def plot_curve(metrics_path: Path, out: Path, title: str = "") -> Path | None:
    """Write the figure; None (with a warning) when matplotlib is missing or no eval ran."""
    series = read_curve(metrics_path)
    if not series["held-out accuracy"] and not series["policy greedy accuracy (held-out)"]:
        logger.warning("%s has no held-out evaluations (set eval_data or a policy_curve)",
                       metrics_path)
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'selfcritic[eval]')")
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, points in series.items():
        if points:
            steps, values = zip(*points, strict=True)
            style = {"alpha": 0.35, "linewidth": 1} if label == "training reward" else {"marker": "o"}
            ax.plot(steps, values, label=label, **style)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("accuracy / reward")
    ax.set_ylim(0, 1)
    ax.set_title(title or f"Learning curve: {metrics_path.parent.name}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
