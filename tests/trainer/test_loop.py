"""The whole loop: loop recipes (sections, overrides, errors) and, on the default 135M
model, questions → on-policy pairs → GRPO → best model → export in one command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic_loop.builtin_models import TEST_MODEL
from trainer.loop_recipe import (
    BestConfig,
    PolicyCurveConfig,
    is_loop_recipe,
    load_loop_recipe,
)
from trainer.pairs_job import PairsJob
from trainer.recipe import RecipeError

REPO = Path(__file__).resolve().parents[2]
LOOP = REPO / "recipes" / "cpu-onpolicy.yaml"


def test_loop_recipe_splits_sections_from_the_training_recipe() -> None:
    loop = load_loop_recipe(LOOP, ["pairs.tasks=12", "learning_rate=3e-5",
                                   "policy_curve.every=2", "calibrate.enabled=false"])
    assert loop.recipe.grpo["learning_rate"] == 3e-5 and loop.recipe.grpo["beta"] == 0.01 and loop.recipe.lora
    assert isinstance(loop.pairs, PairsJob) and loop.pairs.tasks == 12
    assert loop.pairs.samples == 8 and loop.pairs.engine == "vllm"
    assert loop.policy_curve == PolicyCurveConfig(source="pairs", count=100, every=2)
    assert loop.best_checkpoint == BestConfig("eval/accuracy", 0.05)
    assert loop.calibrate is not None and not loop.calibrate.enabled
    assert is_loop_recipe(LOOP) and not is_loop_recipe(REPO / "recipes" / "cpu-critic.yaml")
    assert json.loads(json.dumps(loop.to_dict(), default=str))["pairs"]["tasks"] == 12


@pytest.mark.parametrize("override, message", [
    ("pairs.sample=3", "unknown pairs field 'sample'"),
    ("policy_curve.source=test", "policy_curve.source"),
    ("best_checkpoint.metrc=x", "unknown field 'metrc'"),
    ("learning_rat=1", "unknown recipe field"),
])
def test_bad_loop_settings_name_what_is_allowed(override: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        load_loop_recipe(LOOP, [override])


def test_train_cli_prints_the_resolved_loop_recipe(capsys: pytest.CaptureFixture) -> None:
    from selfcritic.cli import main as selfcritic_main

    assert selfcritic_main(["train", str(LOOP), "--print-recipe", "--set", "pairs.samples=4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pairs"]["samples"] == 4 and printed["recipe"]["judge_mode"] == "fast"
    assert selfcritic_main(["train", str(LOOP), "--set", "pairs.nope=1"]) == 2


LOOP_E2E = [
    f"model={TEST_MODEL}", "max_steps=2", "max_minutes=null", "num_generations=4",
    "per_device_train_batch_size=16", "eval_steps=1", "eval_pairs=4", "save_steps=2",
    "bf16=false", "pairs.engine=transformers", "pairs.tasks=16", "pairs.samples=4",
    "pairs.max_tokens=24", "pairs.heldout_share=0.5", "pairs.pairs_per_question=2",
    "policy_curve.count=4", "policy_curve.every=1", "policy_curve.max_new_tokens=16",
    "calibrate.questions=4", "calibrate.n=2",
]
"""The loop at its smallest: 16 questions × 4 answers, 2 steps of 2 pairs, 4 held-out
pairs and 4 policy questions measured each step, and the export calibrated on 4 held-out
questions through `selfcritic serve` (~4 min on 2 idle cores)."""


@pytest.mark.integration
def test_loop_runs_end_to_end_on_the_default_model(tmp_path: Path) -> None:
    from evaluation.curve_plot import read_curve
    from selfcritic.cli import main as selfcritic_main
    from trainer.best_checkpoint import read_best

    assert selfcritic_main(["train", str(LOOP), *(f"--set={o}" for o in LOOP_E2E),
                       f"--set=output_dir={tmp_path}"]) == 0
    summary = json.loads((tmp_path / "pairs" / "summary.json").read_text())
    assert summary["pairs"]["train"] > 0 and summary["pairs"]["heldout"] > 0
    assert summary["discordant"] == summary["pair_questions"]["train"] + \
        summary["pair_questions"]["heldout"]
    curve = read_curve(tmp_path / "metrics.jsonl")
    judge = curve["held-out accuracy"]
    assert [s for s, _ in curve["policy greedy accuracy (held-out)"]] == [0, 1, 2]
    assert [s for s, _ in judge] == [0, 1, 2]
    best = read_best(tmp_path / "best")
    assert best["value"] == max(a for _, a in judge)
    assert best["step"] == min(s for s, a in judge if a == best["value"])
    meta = json.loads((tmp_path / "final" / "selfcritic-export.json").read_text())
    assert meta["judge"]["mode"] == "fast" and meta["best"]["step"] == best["step"]
    assert meta["steps"] == best["step"] and meta["loop"]["last_step"] == 2
    assert meta["loop"]["pairs"]["pairs"] == summary["pairs"]
    assert (tmp_path / "final" / "model.safetensors").is_file()
    # calibrated through the export's own server, whose judges send token-id prompts
    ranked = {r["strategy"] for r in meta["selection"]["figures"]["ranking"]}
    assert {"knockout-fast", "vote"} <= ranked and meta["selection"]["select"]
    assert (tmp_path / "calibrate" / "calibration.json").is_file()
