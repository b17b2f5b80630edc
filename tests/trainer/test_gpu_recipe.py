"""The paper-scale GPU loop recipe, checked without a GPU: its GRPOConfig has the paper's
settings, and two steps of it run on the CPU with the built-in 135M model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from critic_loop.builtin_models import TEST_MODEL
from trainer.loop_recipe import load_loop_recipe
from trainer.train import grpo_config, lora_config

REPO = Path(__file__).resolve().parents[2]
GPU = REPO / "recipes" / "gpu-onpolicy-7b.yaml"


def test_gpu_recipe_builds_the_papers_grpo_config(tmp_path: Path) -> None:
    loop = load_loop_recipe(GPU, [f"output_dir={tmp_path}"])
    recipe = loop.recipe
    assert recipe.grpo["bf16"] and not recipe.grpo["use_cpu"] and recipe.grpo["use_vllm"]
    # transformers refuses bf16 without an accelerator: build the rest of it on this CPU
    config = grpo_config(dataclasses.replace(
        recipe, grpo={**recipe.grpo, "bf16": False, "use_cpu": True}))
    assert (config.num_generations, config.beta, config.learning_rate, config.temperature,
            config.top_p) == (8, 0.01, 1e-6, 1.0, 0.99)
    assert config.use_vllm and config.vllm_mode == "colocate" and config.gradient_checkpointing
    assert config.max_completion_length == 2048 and config.warmup_steps == 0
    assert config.steps_per_generation == 16 and config.max_grad_norm == 1.0
    assert lora_config(loop.recipe) is None  # full fine-tuning: the reference is a copy
    assert loop.pairs is not None and loop.pairs.samples == 8 and loop.pairs.code_tasks > 0
    assert loop.best_checkpoint is None  # the held-out curve during training is fast-mode


GPU_SMOKE = [
    f"model={TEST_MODEL}", "use_vllm=false", "use_cpu=true", "bf16=false",
    "gradient_checkpointing=false", "max_steps=2", "num_generations=4",
    "per_device_train_batch_size=4", "gradient_accumulation_steps=1",
    "extra_args.steps_per_generation=1", "max_completion_length=16", "max_train_pairs=4",
    f"train_data={REPO / 'data' / 'demo' / 'train.jsonl'}", "pairs=null", "calibrate=null",
    "policy_curve=null", "save_steps=2",
]
"""The GPU recipe's training settings on the CPU: no vLLM, a 135M model, 2 small steps
on demo pairs (mining is covered by the CPU loop's own end-to-end test)."""


@pytest.mark.integration
def test_gpu_recipe_smoke_runs_two_steps_on_the_cpu(tmp_path: Path) -> None:
    from selfcritic.cli import main as selfcritic_main

    assert selfcritic_main(["train", str(GPU), *(f"--set={o}" for o in GPU_SMOKE),
                       f"--set=output_dir={tmp_path}"]) == 0
    meta = json.loads((tmp_path / "final" / "selfcritic-export.json").read_text())
    assert meta["steps"] == 2 and meta["judge"]["mode"] == "reason"
    assert meta["recipe"]["grpo"]["beta"] == 0.01 and meta["recipe"]["grpo"]["learning_rate"] == 1e-6
    steps = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "kl" in s] == [1, 2]
