"""Keep the best model by the held-out curve, not the last, and export that one.

A short CPU run oscillates (the learning curve of `cpu-critic.yaml` peaked at step 60 of
111), so the weights to serve are those of the best held-out measurement. After the curves
have written a step's figures to `metrics.jsonl`, `BestCheckpoint` reads them; when the
judge metric beats every earlier one (and the policy, when measured, has not fallen more
than `policy_tolerance` below its first measurement), it saves the weights (the LoRA
adapter alone under LoRA) to `best/` with `best.json`. `export_best` then exports `best/`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from trainer.step_hooks import AtSteps

logger = logging.getLogger(__name__)

BEST_FILE = "best.json"
POLICY_METRIC = "policy/accuracy"


class BestCheckpoint(AtSteps):
    """Saves the model to `out_dir` whenever `metric` reaches a new best (higher is better).

    Add it after the callbacks that write the figures: callbacks run in the order added.
    """

    def __init__(self, metrics_path: Path, out_dir: Path, *, metric: str = "eval/accuracy",
                 policy_tolerance: float | None = None) -> None:
        self.metrics_path = Path(metrics_path)
        self.out_dir = Path(out_dir)
        self.metric = metric
        self.policy_tolerance = policy_tolerance
        saved = read_best(self.out_dir)
        self.best: dict[str, Any] | None = saved
        self._policy_start: float | None = saved.get("policy_start") if saved else None

    def at_step(self, state: Any, model: Any) -> bool:
        figures = step_figures(self.metrics_path, state.global_step)
        value = figures.get(self.metric)
        if not isinstance(value, (int, float)):
            return False  # not measured (yet): the curve may measure this step at the end
        policy = figures.get(POLICY_METRIC)
        if isinstance(policy, (int, float)) and self._policy_start is None:
            self._policy_start = float(policy)
        if self.best is not None and (value <= self.best["value"]
                                      or self.best["step"] == state.global_step):
            return True
        if (self.policy_tolerance is not None and isinstance(policy, (int, float))
                and self._policy_start is not None
                and policy < self._policy_start - self.policy_tolerance):
            logger.info("step %d: %s %.3f is the best yet, but policy accuracy %.3f fell more "
                        "than %.3f below its start %.3f; not kept", state.global_step,
                        self.metric, value, policy, self.policy_tolerance, self._policy_start)
            return True
        self._save(model, state.global_step, float(value), policy)
        return True

    def _save(self, model: Any, step: int, value: float, policy: Any) -> None:
        staging = self.out_dir.with_name(self.out_dir.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging, safe_serialization=True)
        self.best = {"step": step, "metric": self.metric, "value": value,
                     POLICY_METRIC: policy, "policy_start": self._policy_start}
        (staging / BEST_FILE).write_text(json.dumps(self.best, indent=2) + "\n")
        shutil.rmtree(self.out_dir, ignore_errors=True)
        staging.rename(self.out_dir)
        logger.info("step %d: best %s so far (%.3f); saved to %s", step, self.metric, value,
                    self.out_dir)


def read_best(best_dir: Path) -> dict[str, Any] | None:
    """`best.json` of a best-model directory, or None when there is none."""
    try:
        return json.loads((Path(best_dir) / BEST_FILE).read_text())
    except (OSError, ValueError):
        return None


def step_figures(metrics_path: Path, step: int) -> dict[str, Any]:
    """Every figure `metrics.jsonl` holds for `step` (later records win)."""
    figures: dict[str, Any] = {}
    if not metrics_path.is_file():
        return figures
    for line in metrics_path.read_text().splitlines():
        record = json.loads(line)
        if record.get("step") == step:
            figures.update(record)
    return figures


def export_best(best_dir: Path, export_dir: Path, *, base_dir: Path,
                metadata: dict[str, Any], judge_adapter: bool = False) -> Path:
    """Export the weights in `best_dir` (full, or a LoRA adapter merged into `base_dir`'s
    model, or kept apart as a judge adapter) to `export_dir`, its `best` entry saying which
    step and figure they are."""
    from trainer.export import export_checkpoint

    best = read_best(best_dir)
    if best is None:
        raise FileNotFoundError(f"no {BEST_FILE} in {best_dir}: no best model was kept")
    return export_checkpoint(best_dir, export_dir, base_dir=base_dir,
                             metadata={**metadata, "steps": best["step"], "best": best},
                             judge_adapter=judge_adapter)
