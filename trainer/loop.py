"""The whole loop in one command: questions → on-policy pairs → GRPO → best model → export.

The paper's method in miniature (docs/training.md): the model answers verifiable training
questions, its own right and wrong answers to the same question become preference pairs,
GRPO trains it to judge them (KL to the adapter-off reference), the held-out judge curve
and the policy curve are measured while it trains, the best model by the judge curve is
exported, and `eval calibrate` stores the selection it serves best with in the export's
metadata, beside the judge mode it was trained as.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic_loop.runtime.model_store import resolve_model
from evaluation.dataset import Question
from trainer.export import METADATA_FILE
from trainer.loop_recipe import LoopRecipe, PolicyCurveConfig
from trainer.pairs import split_of_question
from trainer.pairs_job import PairsJob, run_pairs_job, training_questions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopResult:
    """Where the export is, and what each stage produced."""

    export_dir: Path
    steps: int
    pairs: dict[str, Any] | None
    best: dict[str, Any] | None
    calibration: dict[str, Any] | None


def run_loop(loop: LoopRecipe) -> LoopResult:
    """Run every stage `loop` has; each stage's files go under the recipe's output_dir."""
    from trainer.best_checkpoint import BestCheckpoint, export_best, read_best
    from trainer.train import train

    recipe = loop.recipe
    out = Path(recipe.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "loop.json").write_text(json.dumps(loop.to_dict(), indent=2, default=str) + "\n")
    pairs_summary = None
    job = None
    if loop.pairs is not None:
        job = dataclasses.replace(loop.pairs, output=str(out / "pairs"),
                                  model=loop.pairs.model if loop.pairs.url else recipe.model)
        pairs_summary = _mined(job)
        if not pairs_summary["pairs"]["train"]:
            raise ValueError(f"mining gave no training pairs ({pairs_summary}): every question "
                             "was all right or all wrong; sample more answers or questions")
        heldout = out / "pairs" / "heldout.jsonl"
        # the held-out curve during training is the fast judge's; a reason-mode judge is
        # measured on the held-out pairs after training (`selfcritic eval critic`)
        curve = pairs_summary["pairs"]["heldout"] and recipe.judge_mode == "fast"
        recipe = dataclasses.replace(recipe, train_data=str(out / "pairs" / "train.jsonl"),
                                     eval_data=str(heldout) if curve else recipe.eval_data)
    base = resolve_model(recipe.model)
    metrics = out / "metrics.jsonl"
    callbacks: list[Any] = []
    if loop.policy_curve is not None:
        callbacks.append(_policy_curve(loop.policy_curve, job, base.path, metrics))
    best_dir = out / "best"
    if loop.best_checkpoint is not None:
        if not recipe.eval_data:
            raise ValueError("best_checkpoint needs the held-out judge curve (fast mode): mine "
                             "pairs (pairs:) "
                             "or set eval_data")
        callbacks.append(BestCheckpoint(metrics, best_dir, metric=loop.best_checkpoint.metric,
                                        policy_tolerance=loop.best_checkpoint.policy_tolerance))
    result = train(recipe, extra_callbacks=callbacks)
    best = read_best(best_dir) if loop.best_checkpoint is not None else None
    metadata = json.loads((result.export_dir / METADATA_FILE).read_text())
    loop_meta = {"pairs": pairs_summary, "last_step": result.steps}
    if best is not None and best["step"] != result.steps:
        logger.info("exporting the best model (step %d, %s %.3f) instead of the last (step %d)",
                    best["step"], best["metric"], best["value"], result.steps)
        export_best(best_dir, recipe.final_dir, base_dir=base.path,
                    metadata={**metadata, "loop": loop_meta},
                    judge_adapter=recipe.judge_adapter)
    else:
        update_metadata(result.export_dir, {"loop": loop_meta, "best": best})
    calibration = None
    if loop.calibrate is not None and loop.calibrate.enabled:
        calibration = _calibrate(loop, job, result.export_dir, out)
    return LoopResult(result.export_dir, best["step"] if best else result.steps,
                      pairs_summary, best, calibration)


def update_metadata(export_dir: Path, extra: dict[str, Any]) -> Path:
    """Add `extra` to the export's `selfcritic-export.json`, atomically."""
    path = Path(export_dir) / METADATA_FILE
    metadata = {**json.loads(path.read_text()), **extra}
    fd, staging = tempfile.mkstemp(prefix=f".{METADATA_FILE}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(metadata, indent=2, default=str) + "\n")
    os.chmod(staging, 0o644)
    os.replace(staging, path)
    return path


def heldout_questions(job: PairsJob) -> list[Question]:
    """The mined questions of the held-out split: never in the judge's training pairs."""
    return [q for q in training_questions(job)
            if split_of_question(q.id, job.heldout_share) == "heldout"]


def _mined(job: PairsJob) -> dict[str, Any]:
    """Mine, or reuse the pairs a previous run of the same job wrote (a resumed loop)."""
    summary_path = Path(job.output) / "summary.json"
    try:
        previous = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        previous = None
    if previous and previous.get("job") == json.loads(json.dumps(dataclasses.asdict(job))):
        logger.info("reusing the pairs in %s (same mining settings)", job.output)
        return previous
    result, _ = run_pairs_job(job)
    return result.summary()


def _policy_curve(config: PolicyCurveConfig, job: PairsJob | None, model_dir: Path,
                  metrics: Path) -> Any:
    from transformers import AutoTokenizer

    from evaluation.tasks import generate_tasks
    from trainer.policy_curve import PolicyCurve

    if config.source == "pairs":
        if job is None:
            raise ValueError("policy_curve.source 'pairs' needs a pairs: section")
        questions = [q for q in heldout_questions(job) if q.grader != "code"][:config.count]
    else:
        questions = [Question(t.id, t.question, t.answer, t.grader, t.category)
                     for t in generate_tasks(config.seed, "heldout", config.count)]
    return PolicyCurve(questions, AutoTokenizer.from_pretrained(model_dir), metrics,
                       config.every, max_new_tokens=config.max_new_tokens)


def _calibrate(loop: LoopRecipe, job: PairsJob | None, export_dir: Path, out: Path
               ) -> dict[str, Any]:
    """`eval calibrate` on held-out training questions; the selection lands in the export."""
    from evaluation.calibrate import CalibrateConfig, calibrate
    from evaluation.selectors import SelectSettings

    assert loop.calibrate is not None
    if job is None:
        raise ValueError("calibrate needs a pairs: section (its held-out questions)")
    questions = [q for q in heldout_questions(job) if q.grader != "code"][:loop.calibrate.questions]
    data = out / "calibrate" / "questions.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps({"id": q.id, "question": q.question, "answer": q.answer,
                                        "grader": q.grader, "category": q.category}) + "\n"
                            for q in questions))
    n = loop.calibrate.n
    result = calibrate(CalibrateConfig(
        model=str(export_dir), data=data, output=out / "calibrate",
        settings=(SelectSettings(n=n), SelectSettings(n=n, include_greedy=True)),
        max_tokens=job.max_tokens, temperature=job.temperature))
    logger.info("%s", result.summary())
    return result.calibration.to_dict()
