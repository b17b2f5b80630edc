"""Training recipes: a YAML file of `Recipe` fields, overridable with `--set key=value`.

Experiment settings live in `recipes/*.yaml`, not in code. Every field carries `help`
metadata (shown by `selfcritic train --help`); invalid values name the allowed ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from critic_loop.builtin_models import TEST_MODEL
from trainer.rewards import REWARDS


class RecipeError(ValueError):
    """A recipe file or override is invalid; the message says what is allowed."""


def _f(default: Any, help: str, choices: tuple[Any, ...] = ()) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default),
                     metadata={"help": help, "choices": choices})
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class Recipe:
    """Everything one GRPO critic run needs: model, data, rewards, optimiser, output."""

    # -- model and data --------------------------------------------------------------
    model: str = _f(TEST_MODEL, "a built-in model name (`selfcritic models`), 'default', or a "
                               "local model directory")
    train_data: str = _f("data/demo/train.jsonl",
                         "preference pairs: .jsonl, .json, .parquet or a save_to_disk directory")
    max_train_pairs: int | None = _f(None, "use only the first N pairs (None: all)")
    eval_data: str | None = _f(None, "held-out pairs judged during training (fast mode): the "
                               "learning curve in metrics.jsonl (None: no curve)")
    eval_steps: int = _f(10, "judge the held-out pairs every N steps (and before the first)")
    eval_pairs: int | None = _f(None, "judge only the first N held-out pairs (None: all)")
    skip_invalid: bool = _f(False, "skip (and count) bad rows instead of failing")
    seed: int = _f(0, "seed for data ordering, sampling and initialisation")
    judge_mode: str = _f("reason", "judge prompt trained: 'reason' (think, then \\boxed{}; the "
                         "paper's) or 'fast' (a single digit: use max_completion_length 1)",
                         ("reason", "fast"))
    # -- rewards ---------------------------------------------------------------------
    rewards: list[str] = _f(["preference", "format"], "reward functions by name",
                            tuple(REWARDS))
    reward_weights: list[float] = _f([0.9, 0.1], "one weight per reward")
    # -- GRPO ------------------------------------------------------------------------
    num_generations: int = _f(8, "completions sampled per prompt (the GRPO group)")
    per_device_train_batch_size: int = _f(8, "completions per device per optimiser micro-step")
    gradient_accumulation_steps: int = _f(1, "micro-steps per optimiser step")
    num_iterations: int = _f(1, "optimisation passes over each generated batch (GRPO's μ)")
    max_steps: int = _f(-1, "optimiser steps (-1: run num_train_epochs)")
    num_train_epochs: float = _f(1.0, "passes over the data when max_steps is -1")
    max_minutes: float | None = _f(None, "stop (and checkpoint) after this much wall time")
    learning_rate: float = _f(1e-6, "AdamW learning rate")
    lr_scheduler_type: str = _f("constant", "learning-rate schedule",
                                ("constant", "linear", "cosine", "constant_with_warmup"))
    warmup_steps: float = _f(0.0, "warm-up steps (a float < 1 is a fraction of the run)")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    beta: float = _f(0.01, "KL coefficient against the reference model (0: no reference)")
    epsilon: float = _f(0.2, "PPO clipping range")
    loss_type: str = _f("dapo", "how token losses are aggregated",
                        ("grpo", "dr_grpo", "dapo", "bnpo"))
    scale_rewards: str = _f("group", "advantage scaling", ("group", "batch", "none"))
    pair_baseline: bool = _f(False, "fast mode: one GRPO group per pair in both orders (each "
                             "step holds both orders), so position cannot earn an advantage")
    temperature: float = _f(1.0, "sampling temperature for rollouts")
    top_p: float = _f(0.99, "nucleus sampling for rollouts")
    max_completion_length: int = _f(2048, "longest judge output sampled, in tokens")
    # -- precision, device, generation backend ---------------------------------------
    bf16: bool = _f(True, "train in bfloat16 mixed precision")
    use_cpu: bool = _f(False, "train on the CPU even if an accelerator is present")
    gradient_checkpointing: bool = _f(False, "recompute activations to save memory")
    cpu_threads: int | None = _f(None, "torch threads on the CPU (None: torch's default)")
    use_vllm: bool = _f(False, "generate rollouts with vLLM (GPU)")
    vllm_mode: str = _f("colocate", "vLLM beside the trainer or as a server", ("colocate", "server"))
    vllm_gpu_memory_utilization: float = _f(0.3, "GPU memory share for colocated vLLM")
    # -- LoRA ------------------------------------------------------------------------
    lora: bool = _f(False, "train LoRA adapters (merged into the export) instead of all weights")
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA alpha")
    lora_dropout: float = _f(0.0, "LoRA dropout")
    lora_target_modules: str = _f("all-linear", "modules LoRA adapts (comma list or all-linear)")
    # -- output ----------------------------------------------------------------------
    output_dir: str = _f("runs/critic", "checkpoints, metrics.jsonl and train.log go here")
    export_dir: str | None = _f(None, "servable model directory (None: OUTPUT_DIR/final)")
    save_steps: int = _f(50, "save a checkpoint every N steps")
    save_total_limit: int | None = _f(2, "keep at most N checkpoints (None: all)")
    logging_steps: int = _f(1, "log metrics every N steps")
    resume: bool = _f(True, "continue from the last complete checkpoint in output_dir")
    extra_args: dict[str, Any] = _f({}, "any other GRPOConfig field, passed through as-is")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, choices = getattr(self, f.name), f.metadata.get("choices", ())
            wrong = [v for v in (value if isinstance(value, list) else [value])
                     if choices and v not in choices]
            if wrong:
                raise RecipeError(f"{f.name}: {wrong[0]!r} is not allowed; "
                                  f"allowed: {', '.join(map(str, choices))}")
        if len(self.rewards) != len(self.reward_weights):
            raise RecipeError(f"reward_weights needs one weight per reward: {len(self.rewards)} "
                              f"rewards, {len(self.reward_weights)} weights")
        for name in ("num_generations", "per_device_train_batch_size",
                     "gradient_accumulation_steps", "max_completion_length", "save_steps"):
            if getattr(self, name) < 1:
                raise RecipeError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise RecipeError("num_generations must be >= 2: GRPO compares samples in a group")
        batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if batch % self.num_generations:
            raise RecipeError(
                f"per_device_train_batch_size × gradient_accumulation_steps ({batch}) must be a "
                f"multiple of num_generations ({self.num_generations})")
        if self.pair_baseline and (self.judge_mode != "fast" or self.max_completion_length != 1
                                   or (batch // self.num_generations) % 2):
            raise RecipeError("pair_baseline needs judge_mode fast, max_completion_length 1 "
                              "and an even number of prompts per step (both orders of a pair)")
        if not 0 < self.top_p <= 1 or self.temperature <= 0 or self.learning_rate <= 0:
            raise RecipeError("need 0 < top_p <= 1, temperature > 0 and learning_rate > 0")

    @property
    def final_dir(self) -> Path:
        """Where the servable export goes."""
        return Path(self.export_dir) if self.export_dir else Path(self.output_dir) / "final"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_recipe(path: str | Path | None, overrides: list[str] = ()) -> Recipe:
    """Read a YAML recipe (None: all defaults) and apply `key=value` overrides in order."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise RecipeError(f"cannot read recipe {path}: {error}") from None
        if not isinstance(loaded, dict):
            raise RecipeError(f"{path}: a recipe is a mapping of field: value")
        values.update(loaded)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--set wants key=value, got {override!r}")
        value = yaml.safe_load(raw) if raw.strip() else None
        key = key.strip()
        if key.startswith("extra_args."):
            values.setdefault("extra_args", {})
            values["extra_args"] = {**values["extra_args"], key.split(".", 1)[1]: value}
        else:
            values[key] = value
    return build_recipe(values)


def build_recipe(values: dict[str, Any]) -> Recipe:
    """A `Recipe` from plain values, each coerced to its field's type."""
    hints = typing.get_type_hints(Recipe)
    names = [f.name for f in dataclasses.fields(Recipe)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise RecipeError(f"unknown recipe field {unknown[0]!r}; allowed: {', '.join(names)}")
    return Recipe(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})


def describe_fields() -> str:
    """One line per field with its default and help, for `--help`."""
    lines = []
    for f in dataclasses.fields(Recipe):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        choices = f.metadata.get("choices")
        extra = f" [{'|'.join(map(str, choices))}]" if choices else ""
        lines.append(f"  {f.name} (default {default!r}){extra}: {f.metadata['help']}")
    return "\n".join(lines)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint) or hint
    try:
        if origin is list:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list):
                raise TypeError
            return [_coerce(name, item, typing.get_args(hint)[0]) for item in items]
        if origin is dict:
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
        if origin is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in {"true", "false", "1", "0", "yes", "no"}:
                return str(value).lower() in {"true", "1", "yes"}
            raise TypeError
        if origin is int and (isinstance(value, bool) or float(value) != int(float(value))):
            raise TypeError
        return origin(value) if origin in (int, float, str) else value
    except (TypeError, ValueError):
        raise RecipeError(f"{name}: {value!r} is not a valid {getattr(hint, '__name__', hint)}"
                          ) from None
