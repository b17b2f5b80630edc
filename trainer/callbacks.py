"""Per-step training metrics: one JSON line per log event, a readable console line, and
running reward statistics for the export's metadata.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

CONSOLE_KEYS = {
    "reward": "reward",
    "rewards/preference_reward/mean": "pref",
    "rewards/format_reward/mean": "format",
    "rewards/verdict_reward/mean": "verdict",
    "kl": "kl",
    "completions/mean_length": "len",
    "completions/clipped_ratio": "clipped",
    "loss": "loss",
}
"""Metrics shown on the console line (all of them go to the JSONL file)."""


@dataclass
class RewardStats:
    """Means of each logged reward metric over the run, and over its last 10 logs."""

    history: dict[str, list[float]] = field(default_factory=dict)

    def add(self, logs: dict[str, Any]) -> None:
        for key, value in logs.items():
            if (key == "reward" or key.startswith("rewards/")) and _finite(value):
                self.history.setdefault(key, []).append(float(value))

    def summary(self) -> dict[str, dict[str, float]]:
        return {key: {"mean": sum(v) / len(v), "last10_mean": sum(v[-10:]) / len(v[-10:]),
                      "logs": len(v)} for key, v in self.history.items() if v}


class MetricsLogger(TrainerCallback):
    """Writes every training log to `path` as JSONL (appending across resumes) and logs a
    one-line summary with both rewards, KL and lengths."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.stats = RewardStats()
        self._started = time.monotonic()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        self.stats.add(logs)
        record = {"step": state.global_step, "max_steps": state.max_steps,
                  "elapsed_s": round(time.monotonic() - self._started, 1), **logs}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record, default=_jsonable) + "\n")
        shown = " ".join(f"{short}={logs[key]:.4g}" for key, short in CONSOLE_KEYS.items()
                         if _finite(logs.get(key)))
        logger.info("step %d/%d %s", state.global_step, state.max_steps, shown)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
