"""A loop recipe: a training recipe plus the sections that make it the whole loop.

`selfcritic train RECIPE.yaml` runs the loop (trainer/loop.py) when the YAML has any of:

- `pairs:` mine on-policy pairs first (`trainer.pairs_job.PairsJob` fields); they become
  `train_data` and `eval_data`;
- `policy_curve:` greedy accuracy on held-out questions during training (`PolicyCurveConfig`);
- `best_checkpoint:` keep and export the best model by the held-out curve (`BestConfig`);
- `calibrate:` measure the selection strategies on the exported model and store the best
  as its `selection` default (`CalibrateSection`).

Everything else is the training recipe (`trainer.recipe`), read by its own loader. A
`--set` override `SECTION.key=value` goes to a section (`SECTION=null` skips that stage),
any other to the recipe.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainer.pairs_job import PairsJob
from trainer.recipe import Recipe, RecipeError, load_recipe


@dataclass(frozen=True)
class PolicyCurveConfig:
    """Which held-out questions the policy curve answers, and how often."""

    source: str = "pairs"
    """'pairs': the questions of the mined held-out split (disjoint from the judge's
    training questions; validation, not a test set); 'tasks': the seeded arithmetic tasks'
    held-out split."""
    count: int = 40
    seed: int = 0
    every: int = 10
    max_new_tokens: int = 48

    def __post_init__(self) -> None:
        if self.source not in ("pairs", "tasks"):
            raise RecipeError(f"policy_curve.source: {self.source!r} is not allowed; "
                              "allowed: pairs, tasks")
        if self.count < 1 or self.every < 1 or self.max_new_tokens < 1:
            raise RecipeError("policy_curve: count, every and max_new_tokens must be >= 1")


@dataclass(frozen=True)
class BestConfig:
    """How the best model is chosen: the judge metric, and how far the policy may fall."""

    metric: str = "eval/accuracy"
    policy_tolerance: float | None = None
    """Skip a model whose policy accuracy is more than this below its first measurement."""


@dataclass(frozen=True)
class CalibrateSection:
    """`eval calibrate` on the export, on held-out training questions (never a test set)."""

    enabled: bool = True
    questions: int = 40
    n: int = 4


@dataclass(frozen=True)
class LoopRecipe:
    """A training recipe and its loop sections (None: that stage is skipped)."""

    recipe: Recipe
    pairs: PairsJob | None = None
    policy_curve: PolicyCurveConfig | None = None
    best_checkpoint: BestConfig | None = None
    calibrate: CalibrateSection | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe.to_dict(),
                **{name: dataclasses.asdict(getattr(self, name)) if getattr(self, name) else None
                   for name in SECTIONS}}


SECTIONS: dict[str, type] = {"pairs": PairsJob, "policy_curve": PolicyCurveConfig,
                             "best_checkpoint": BestConfig, "calibrate": CalibrateSection}


def is_loop_recipe(path: str | Path) -> bool:
    """Whether the YAML file has any loop section."""
    try:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(loaded, dict) and bool(SECTIONS.keys() & loaded.keys())


def load_loop_recipe(path: str | Path, overrides: list[str] = ()) -> LoopRecipe:
    """Read a loop recipe and apply `--set` overrides (`SECTION.key=value` to a section)."""
    try:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RecipeError(f"cannot read recipe {path}: {error}") from None
    if not isinstance(loaded, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of field: value")
    sections = {name: loaded.pop(name) for name in list(SECTIONS) if name in loaded}
    rest = []
    for override in overrides:
        key, sep, raw = override.partition("=")
        section, dot, field = key.strip().partition(".")
        if sep and not dot and section in SECTIONS:  # `pairs=null`: skip that stage
            sections[section] = yaml.safe_load(raw) if raw.strip() else None
        elif sep and dot and section in SECTIONS:
            current = sections.get(section)
            sections[section] = {**(current if isinstance(current, dict) else {}),
                                 field: yaml.safe_load(raw) if raw.strip() else None}
        else:
            rest.append(override)
    # The training recipe is read by its own loader, whatever its layout
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(loaded, f)
    try:
        recipe = load_recipe(f.name, rest)
    finally:
        Path(f.name).unlink(missing_ok=True)
    built = {name: _section(name, values) for name, values in sections.items()}
    return LoopRecipe(recipe, **built)


def _section(name: str, values: Any) -> Any:
    if values is None or values is False:
        return None
    if values is True:
        values = {}
    if not isinstance(values, dict):
        raise RecipeError(f"{name}: a section is a mapping of field: value")
    kind = SECTIONS[name]
    if kind is PairsJob:
        try:
            return PairsJob.from_dict(values)
        except (TypeError, ValueError) as error:
            raise RecipeError(f"pairs: {error}") from None
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise RecipeError(f"{name}: unknown field {unknown[0]!r}; allowed: "
                          f"{', '.join(sorted(names))}")
    try:
        return kind(**values)
    except TypeError as error:
        raise RecipeError(f"{name}: {error}") from None
