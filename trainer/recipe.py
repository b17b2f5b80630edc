"""Training recipes: a YAML file of our own fields plus a `grpo:` section for TRL.

Experiment settings live in `recipes/*.yaml`, not in code. A recipe has two parts:

- our fields (`Recipe`): the model, the data, the rewards, LoRA, the output, the time
  budget; each carries `help` metadata (shown by `selfcritic train --help`);
- `grpo:`: TRL's own `GRPOConfig` fields, passed through as `GRPOConfig(**grpo)`, so any
  field TRL has is settable and none is copied here. `GRPO_DEFAULTS` holds our defaults
  for the ones a critic run cares about.

`--set key=value` overrides either part (`--set grpo.beta=0.02`, or `--set beta=0.02`
for a GRPOConfig field). The older flat layout (GRPOConfig fields at the top level,
others under `extra_args:`) still loads. Invalid values name the allowed ones.
"""

from __future__ import annotations

import dataclasses
import difflib
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


GRPO_SECTION = "grpo"
LEGACY_EXTRA = "extra_args"
"""The flat layout's pass-through section, read into `grpo`."""

GRPO_DEFAULTS: dict[str, Any] = {
    "num_generations": 8,                # completions sampled per prompt (the GRPO group)
    "per_device_train_batch_size": 8,    # completions per device per optimiser micro-step
    "gradient_accumulation_steps": 1,
    "num_iterations": 1,                 # optimisation passes per generated batch (μ)
    "max_steps": -1,                     # -1: run num_train_epochs
    "num_train_epochs": 1.0,
    "learning_rate": 1e-6,
    "lr_scheduler_type": "constant",
    "warmup_steps": 0.0,                 # a float < 1 is a fraction of the run
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
    "beta": 0.01,                        # KL coefficient (0: no reference model)
    "epsilon": 0.2,                      # PPO clipping range
    "loss_type": "dapo",
    "scale_rewards": "group",
    "temperature": 1.0,                  # rollout sampling
    "top_p": 0.99,
    "max_completion_length": 2048,       # longest judge output sampled, in tokens
    "bf16": True,                        # mixed precision (float32 on a CPU without bf16)
    "use_cpu": False,
    "gradient_checkpointing": False,
    "use_vllm": False,                   # vLLM rollouts (GPU)
    "vllm_mode": "colocate",
    "vllm_gpu_memory_utilization": 0.3,
    "save_steps": 50,
    "save_total_limit": 2,
    "logging_steps": 1,
}
"""Our defaults for TRL's `GRPOConfig` fields; every other field keeps TRL's default."""

GRPO_CHOICES: dict[str, tuple[str, ...]] = {
    "loss_type": ("grpo", "dr_grpo", "dapo", "bnpo"),
    "lr_scheduler_type": ("constant", "linear", "cosine", "constant_with_warmup"),
    "scale_rewards": ("group", "batch", "none"),
    "vllm_mode": ("colocate", "server"),
}
"""The GRPOConfig values this trainer supports, checked when the recipe loads."""


def _f(default: Any, help: str, choices: tuple[Any, ...] = ()) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default),
                     metadata={"help": help, "choices": choices})
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class Recipe:
    """Everything one GRPO critic run needs: model, data, rewards, TRL's config, output."""

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
    pair_baseline: bool = _f(False, "fast mode: one GRPO group per pair in both orders (each "
                             "step holds both orders), so position cannot earn an advantage")
    verdict_logps: bool = _f(False, "fast mode: score the verdict over the verdict tokens "
                             "only (the distribution it is sampled from and served with), so "
                             "the KL and the ratio see the judge's choice, not mass moved to "
                             "other tokens")
    # -- budget and device -----------------------------------------------------------
    max_minutes: float | None = _f(None, "stop (and checkpoint) after this much wall time")
    cpu_threads: int | None = _f(None, "torch threads on the CPU (None: torch's default)")
    # -- LoRA ------------------------------------------------------------------------
    lora: bool = _f(False, "train LoRA adapters (merged into the export) instead of all weights")
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA alpha")
    lora_dropout: float = _f(0.0, "LoRA dropout")
    lora_target_modules: str = _f("all-linear", "modules LoRA adapts (comma list or all-linear)")
    judge_adapter: bool = _f(False, "export the LoRA apart, as an adapter only judgments run "
                             "with: the served policy keeps the base weights (needs lora)")
    # -- output ----------------------------------------------------------------------
    output_dir: str = _f("runs/critic", "checkpoints, metrics.jsonl and train.log go here")
    export_dir: str | None = _f(None, "servable model directory (None: OUTPUT_DIR/final)")
    resume: bool = _f(True, "continue from the last complete checkpoint in output_dir")
    # -- TRL -------------------------------------------------------------------------
    grpo: dict[str, Any] = _f(GRPO_DEFAULTS, "TRL GRPOConfig fields, passed as "
                              "GRPOConfig(**grpo) (unset: GRPO_DEFAULTS, then TRL's)")

    def __post_init__(self) -> None:
        self.grpo = {**GRPO_DEFAULTS, **self.grpo}
        for f in dataclasses.fields(self):
            _check_choice(f.name, getattr(self, f.name), f.metadata.get("choices", ()))
        for name, choices in GRPO_CHOICES.items():
            _check_choice(f"{GRPO_SECTION}.{name}", self.grpo[name], choices)
        if len(self.rewards) != len(self.reward_weights):
            raise RecipeError(f"reward_weights needs one weight per reward: {len(self.rewards)} "
                              f"rewards, {len(self.reward_weights)} weights")
        grpo = self.grpo
        for name in ("num_generations", "per_device_train_batch_size",
                     "gradient_accumulation_steps", "max_completion_length", "save_steps"):
            if grpo[name] < 1:
                raise RecipeError(f"{name} must be >= 1, got {grpo[name]}")
        if grpo["num_generations"] < 2:
            raise RecipeError("num_generations must be >= 2: GRPO compares samples in a group")
        batch = grpo["per_device_train_batch_size"] * grpo["gradient_accumulation_steps"]
        if batch % grpo["num_generations"]:
            raise RecipeError(
                f"per_device_train_batch_size × gradient_accumulation_steps ({batch}) must be a "
                f"multiple of num_generations ({grpo['num_generations']})")
        if self.pair_baseline and (self.judge_mode != "fast" or grpo["max_completion_length"] != 1
                                   or (batch // grpo["num_generations"]) % 2):
            raise RecipeError("pair_baseline needs judge_mode fast, max_completion_length 1 "
                              "and an even number of prompts per step (both orders of a pair)")
        if not 0 < grpo["top_p"] <= 1 or grpo["temperature"] <= 0 or grpo["learning_rate"] <= 0:
            raise RecipeError("need 0 < top_p <= 1, temperature > 0 and learning_rate > 0")
        if self.verdict_logps and not self.one_token:
            raise RecipeError("verdict_logps needs judge_mode fast and max_completion_length 1")
        if self.judge_adapter and not self.lora:
            raise RecipeError("judge_adapter exports the LoRA adapter apart: set lora: true")

    @property
    def final_dir(self) -> Path:
        """Where the servable export goes."""
        return Path(self.export_dir) if self.export_dir else Path(self.output_dir) / "final"

    @property
    def one_token(self) -> bool:
        """The fast judge trained on one-token completions (trainer/one_token_grpo.py)."""
        return self.judge_mode == "fast" and self.grpo["max_completion_length"] == 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_OWN_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name != GRPO_SECTION)


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
        section, dot, name = key.strip().partition(".")
        if not (dot and section in (GRPO_SECTION, LEGACY_EXTRA)):
            section, name = "", key.strip()
        # the last word on a name wins, whichever layout said it before
        for other in {"", GRPO_SECTION, LEGACY_EXTRA} - {section}:
            if other:
                (values.get(other) or {}).pop(name, None)
            elif name not in _OWN_FIELDS:
                values.pop(name, None)
        if section:
            values[section] = {**(values.get(section) or {}), name: value}
        else:
            values[name] = value
    return build_recipe(values)


def build_recipe(values: dict[str, Any]) -> Recipe:
    """A `Recipe` from plain values, each coerced to its field's type.

    GRPOConfig fields found at the top level or under `extra_args` (the flat layout) move
    into the `grpo` section; the `grpo` section wins over both.
    """
    hints = typing.get_type_hints(Recipe)
    ours = _OWN_FIELDS
    grpo: dict[str, Any] = {}
    for section in (LEGACY_EXTRA, GRPO_SECTION):
        given = values.get(section) or {}
        if not isinstance(given, dict):
            raise RecipeError(f"{section}: a mapping of GRPOConfig field: value, got {given!r}")
        grpo.update(given)
    flat = {k: v for k, v in values.items() if k not in (LEGACY_EXTRA, GRPO_SECTION)}
    unknown = sorted(set(flat) - set(ours) - set(GRPO_DEFAULTS))
    trl_fields = grpo_config_fields() if unknown or set(grpo) - set(GRPO_DEFAULTS) else None
    for key in unknown:
        if trl_fields is None or key not in trl_fields:
            raise RecipeError(f"unknown recipe field {key!r}; allowed: "
                              f"{', '.join(ours)}, or a GRPOConfig field (under "
                              f"{GRPO_SECTION}:){_close(key, trl_fields)}")
    if trl_fields is not None:
        for key in sorted(set(grpo) - trl_fields):
            raise RecipeError(f"unknown GRPOConfig field {GRPO_SECTION}.{key}"
                              f"{_close(key, trl_fields)}; allowed: {', '.join(sorted(trl_fields))}")
    grpo = {**{k: v for k, v in flat.items() if k not in ours}, **grpo}
    own = {k: _coerce(k, v, hints[k]) for k, v in flat.items() if k in ours}
    typed = {k: _coerce(k, v, _default_type(k)) for k, v in grpo.items()}
    return Recipe(**own, grpo=typed)


def grpo_config_fields() -> frozenset[str] | None:
    """Every field of TRL's `GRPOConfig`, or None when TRL is not installed (then TRL
    itself checks the names when training builds the config)."""
    try:
        from trl import GRPOConfig
    except ImportError:
        return None
    return frozenset(f.name for f in dataclasses.fields(GRPOConfig))


def describe_fields() -> str:
    """One line per field with its default and help, for `--help`."""
    lines = []
    for f in dataclasses.fields(Recipe):
        if f.name == GRPO_SECTION:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        choices = f.metadata.get("choices")
        extra = f" [{'|'.join(map(str, choices))}]" if choices else ""
        lines.append(f"  {f.name} (default {default!r}){extra}: {f.metadata['help']}")
    lines.append(f"\n{GRPO_SECTION}: TRL's GRPOConfig, any of its fields (TRL's docs describe "
                 f"them); our defaults:")
    for name, default in GRPO_DEFAULTS.items():
        choices = GRPO_CHOICES.get(name)
        extra = f" [{'|'.join(choices)}]" if choices else ""
        lines.append(f"  {GRPO_SECTION}.{name} (default {default!r}){extra}")
    return "\n".join(lines)


def _check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    wrong = [v for v in (value if isinstance(value, list) else [value])
             if choices and v not in choices]
    if wrong:
        raise RecipeError(f"{name}: {wrong[0]!r} is not allowed; "
                          f"allowed: {', '.join(map(str, choices))}")


def _close(key: str, names: frozenset[str] | None) -> str:
    close = difflib.get_close_matches(key, sorted(names or ()), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _default_type(name: str) -> Any:
    """A GRPOConfig value's type from our default (None is always allowed: TRL's
    optional fields); a field without our default is taken as YAML read it."""
    if name not in GRPO_DEFAULTS:
        return typing.Any
    return type(GRPO_DEFAULTS[name]) | None


def _coerce(name: str, value: Any, hint: Any) -> Any:
    if hint is typing.Any:
        return value
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
