"""Run one GRPO critic training from a `Recipe`: data, TRL `GRPOTrainer`, resume, export.

Checkpoints land in `output_dir/checkpoint-N`; a rerun of the same recipe continues from
the last complete one. Metrics go to `output_dir/metrics.jsonl`, logs to `train.log`.
Under several processes (`accelerate launch`, `torchrun`) every process trains and takes
part in gathering the weights; the main process alone writes the export.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from critic_loop.judge_prompt import VERDICT_CHOICES
from critic_loop.runtime.model_store import resolve_model
from critic_loop.verdict_tokens import verdict_token_ids
from evaluation.pairs import load_pairs
from trainer.callbacks import MetricsLogger, QuietProgress, StopOnSignal, TimeBudget
from trainer.data import to_grpo_dataset
from trainer.export import export_model, judge_metadata
from trainer.recipe import GRPO_SECTION, Recipe, RecipeError
from trainer.rewards import get_rewards

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class TrainResult:
    """Where the servable export is, how many optimiser steps ran, and the metrics file."""

    export_dir: Path
    steps: int
    metrics_path: Path
    reward_stats: dict[str, dict[str, float]]


def grpo_config(recipe: Recipe) -> Any:
    """TRL's `GRPOConfig` from the recipe's `grpo` section, over the settings a critic run
    always needs (the section last, so it can set anything)."""
    from trl import GRPOConfig

    args: dict[str, Any] = dict(
        output_dir=recipe.output_dir, seed=recipe.seed, data_seed=recipe.seed,
        reward_weights=list(recipe.reward_weights), fp16=False, save_strategy="steps",
        report_to="none", remove_unused_columns=False, disable_dropout=True,
        shuffle_dataset=not recipe.pair_baseline,
    )
    args.update(recipe.grpo)
    try:
        return GRPOConfig(**args)
    except TypeError as error:  # a field TRL does not have (when the recipe could not check)
        raise RecipeError(f"{GRPO_SECTION}: {error}") from None


def fast_verdict_token_ids(model_dir: str | Path) -> dict[str, tuple[int, ...]]:
    """Every spelling of the fast verdict's "1" and "2" (critic_loop.verdict_tokens): rollouts
    sample only what the served fast judge can answer, so every reward compares the two."""
    from transformers import AutoTokenizer

    return verdict_token_ids(AutoTokenizer.from_pretrained(model_dir), VERDICT_CHOICES)


def heldout_curve(recipe: Recipe, model_dir: Path, metrics_path: Path) -> Any:
    """The callback that measures held-out fast-judge accuracy while training."""
    from transformers import AutoTokenizer

    from evaluation.critic_curve import HeldOutCurve

    if recipe.judge_mode != "fast":
        raise RecipeError("eval_data measures the fast judge during training; a reason-mode "
                          "recipe is measured after training with `selfcritic eval critic`")
    pairs = load_pairs(recipe.eval_data, seed=recipe.seed).pairs[: recipe.eval_pairs]
    if any(pair.given_prompt for pair in pairs):
        raise RecipeError("eval_data gives whole judge prompts (question/image/answer rows), "
                          "which the held-out curve cannot swap or lay out as the fast judge; "
                          "measure them after training with `selfcritic eval critic --judge "
                          "reason`")
    return HeldOutCurve(pairs, AutoTokenizer.from_pretrained(model_dir), metrics_path,
                        recipe.eval_steps, bf16=recipe.grpo["bf16"])


def lora_config(recipe: Recipe) -> Any:
    """A peft `LoraConfig` when the recipe asks for LoRA, else None."""
    if not recipe.lora:
        return None
    from peft import LoraConfig

    targets = recipe.lora_target_modules
    return LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha,
                      lora_dropout=recipe.lora_dropout, task_type="CAUSAL_LM",
                      target_modules=targets if targets == "all-linear" else targets.split(","))


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The highest `checkpoint-N` whose trainer state was written (saved last, so a
    checkpoint killed mid-save is passed over)."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir() and _readable_json(child / "trainer_state.json"):
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def train(recipe: Recipe, extra_callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train a critic as `recipe` says and export it; resumes when a checkpoint exists.

    `extra_callbacks` run after the built-in ones (so they see this step's figures)."""
    import torch
    from transformers.trainer_callback import ProgressCallback
    from trl import GRPOTrainer

    from critic_loop.runtime.dtype_policy import resolve_training_bf16

    if recipe.cpu_threads:
        torch.set_num_threads(recipe.cpu_threads)
    # bf16 autocast on a CPU without native bf16 is emulated: train in float32 there
    on_cpu = recipe.grpo["use_cpu"] or not torch.cuda.is_available()
    recipe = replace(recipe, grpo={**recipe.grpo, "bf16": resolve_training_bf16(
        recipe.grpo["bf16"], on_cpu=on_cpu)})
    output_dir = Path(recipe.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    log_handler = _attach_log_file(output_dir / "train.log")
    try:
        (output_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2) + "\n")
        base = resolve_model(recipe.model)
        loaded = load_pairs(recipe.train_data, seed=recipe.seed, skip_invalid=recipe.skip_invalid)
        pairs = loaded.pairs[: recipe.max_train_pairs] if recipe.max_train_pairs else loaded.pairs
        if recipe.pair_baseline:  # both orders stay adjacent, so the pair order is drawn here
            pairs = random.Random(recipe.seed).sample(pairs, len(pairs))
        dataset = to_grpo_dataset(pairs, recipe.judge_mode)
        metrics = MetricsLogger(output_dir / "metrics.jsonl")
        callbacks: list[Any] = [metrics, StopOnSignal()]
        if recipe.max_minutes:
            callbacks.append(TimeBudget(recipe.max_minutes))
        if recipe.eval_data:
            callbacks.append(heldout_curve(recipe, base.path, metrics.path))
        callbacks.extend(extra_callbacks)
        trainer_class, extra = GRPOTrainer, {}
        if recipe.one_token:
            from trainer.one_token_grpo import OneTokenGRPOTrainer

            trainer_class = OneTokenGRPOTrainer
            extra = {"verdict_token_ids": fast_verdict_token_ids(base.path),
                     "pair_baseline": recipe.pair_baseline,
                     "verdict_logps": recipe.verdict_logps}
        trainer = trainer_class(model=str(base.path), reward_funcs=get_rewards(recipe.rewards),
                              args=grpo_config(recipe), train_dataset=dataset, **extra,
                              peft_config=lora_config(recipe), callbacks=callbacks)
        if trainer.pop_callback(ProgressCallback) is not None:
            trainer.add_callback(QuietProgress)
        resume = last_complete_checkpoint(output_dir) if recipe.resume else None
        if resume is not None:
            logger.info("Resuming from %s", resume)
        logger.info("Training %s on %d pairs (%d skipped) into %s", base.path, len(pairs),
                    loaded.skipped, output_dir)
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        steps = trainer.state.global_step
        stats = metrics.stats.summary()
        metadata = {"base_model": recipe.model, "base_model_path": str(base.path),
                    "recipe": recipe.to_dict(), "judge": judge_metadata(recipe.judge_mode),
                    "steps": steps, "train_pairs": len(pairs), "train_prompts": len(dataset),
                    "skipped_rows": loaded.skipped, "reward_stats": stats,
                    "resumed_from": str(resume) if resume else None}
        export_dir = _export(trainer, recipe, metadata, base.path)
        return TrainResult(export_dir, steps, metrics.path, stats)
    finally:
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()


def _export(trainer: Any, recipe: Recipe, metadata: dict[str, Any], base_dir: Path) -> Path:
    """Export on the main process from the full weights, with every process in step.

    Gathering is collective: under FSDP or DeepSpeed ZeRO-3 each process holds a shard,
    so all of them call `get_state_dict` (on `model_wrapped`: the DeepSpeed engine needs
    its wrapper; DDP and a single process are unwrapped inside). One process writing
    keeps the processes from racing on the same directory; the barrier after it keeps
    the others from returning, and a caller from reading the export, before it exists.
    """
    accelerator = trainer.accelerator
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(trainer.model_wrapped)
    if accelerator.is_main_process:
        logger.info("Exporting on process %d of %d", accelerator.process_index,
                    accelerator.num_processes)
        export_model(accelerator.unwrap_model(trainer.model), trainer.processing_class,
                     recipe.final_dir, metadata=metadata, base_dir=base_dir,
                     state_dict=state_dict, judge_adapter=recipe.judge_adapter)
    accelerator.wait_for_everyone()
    return recipe.final_dir.resolve()


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def _readable_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True
