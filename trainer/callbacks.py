"""Per-step training metrics: one JSON line per log event, a readable console line, and
running reward statistics for the export's metadata.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

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
        if shown:
            logger.info("step %d/%d %s", state.global_step, state.max_steps, shown)
        elif _finite(logs.get("train_runtime")):
            logger.info("training stopped at step %d/%d after %.0f s", state.global_step,
                        state.max_steps, logs["train_runtime"])


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


class QuietProgress(ProgressCallback):
    """The progress bar without its dump of every log dict to stdout: `MetricsLogger`
    already reports each step, and stdout stays free for the CLI's result."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        return None


class TimeBudget(TrainerCallback):
    """Stops training (with a checkpoint) once `minutes` of wall time have passed, so a
    run on a slow or shared machine ends on time with whatever steps it managed."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self._started = time.monotonic()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.monotonic()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if time.monotonic() - self._started >= self.seconds:
            logger.info("time budget of %.0f min reached at step %d; stopping",
                        self.seconds / 60, state.global_step)
            control.should_training_stop = True
            control.should_save = True


class StopOnSignal(TrainerCallback):
    """Ctrl-C or SIGTERM ends training after the current step, with a checkpoint, so the
    rest of the run (best-model export, calibration) still happens; a second signal stops
    at once. The handlers are installed for the training only, and only from the main
    thread (where Python delivers signals)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: Any) -> None:
        if self.received is not None:  # the second one: the previous handler decides
            self._restore()
            signal.raise_signal(number)
            return
        self.received = number
        logger.warning("%s: stopping after this step (again to stop now)",
                       signal.Signals(number).name)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.received is not None:
            logger.info("stopping at step %d on %s", state.global_step,
                        signal.Signals(self.received).name)
            control.should_training_stop = True
            control.should_save = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._restore()

    def _restore(self) -> None:
        for number, previous in self._previous.items():
            if previous is not None:  # None: set outside Python, nothing to put back
                signal.signal(number, previous)
        self._previous = {}
