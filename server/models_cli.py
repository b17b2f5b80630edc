"""`selfcritic models`: the built-in models `--model NAME` serves, where they come from and
whether they are built yet (a table, or `--json`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from critic_loop.builtin_models import BUILTIN_MODELS, DEFAULT_MODEL, BuiltinModel
from critic_loop.generation_defaults import GenerationDefaults
from critic_loop.runtime.gguf_source import installed
from critic_loop.runtime.model_store import is_materialised, model_dir, selfcritic_home

COLUMNS = ("name", "parameters", "licence", "quantisation", "materialised", "packages", "path")


def add_models_parser(sub: Any) -> None:
    p = sub.add_parser(
        "models", help="List the built-in models (--model NAME) and whether they are built.",
        description="List the built-in models that `selfcritic serve --model NAME` serves: "
                    "parameters, licence, the pinned PyPI packages their GGUF file comes "
                    "from, quantisation, whether they are built yet, and where. A model is "
                    "built on first use (or by `selfcritic prepare-model --model NAME`) "
                    "under $SELFCRITIC_HOME/models.")
    p.add_argument("--json", action="store_true", help="Print JSON (one object per model, "
                   "with the GGUF SHA-256 and sampling defaults too) instead of a table.")
    p.set_defaults(run=run_models)


def describe(model: BuiltinModel, home: Path) -> dict[str, Any]:
    """One model's listing entry."""
    built = is_materialised(model, home)
    return {
        "name": model.name, "default": model.name == DEFAULT_MODEL,
        "parameters": model.parameters, "licence": model.licence,
        "quantisation": model.quantisation,
        "packages": [p.requirement for p in model.packages],
        "packages_installed": installed(model), "materialised": built,
        "path": str(model_dir(model, home)), "gguf_sha256": model.gguf_sha256,
        "sampling_defaults": GenerationDefaults.from_config(model.generation).set_values(),
        "sampling_defaults_source": model.generation_source,
    }


def table(entries: list[dict[str, Any]]) -> str:
    """Aligned columns; a model's packages are shortened to a range when there are many."""
    rows = [[c.upper() for c in COLUMNS]]
    for e in entries:
        state = "yes" if e["materialised"] else (
            "no" if e["packages_installed"] else "no (packages not installed)")
        rows.append([e["name"] + (" (default)" if e["default"] else ""), e["parameters"],
                     e["licence"], e["quantisation"], state, _packages(e["packages"]),
                     e["path"]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                   + "\n" for r in rows)


def _packages(requirements: list[str]) -> str:
    if len(requirements) <= 2:
        return " ".join(requirements)
    return f"{requirements[0]} .. {requirements[-1]} ({len(requirements)} packages)"


def run_models(args: argparse.Namespace) -> int:
    home = selfcritic_home()
    entries = [describe(m, home) for m in BUILTIN_MODELS.values()]
    if args.json:
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
    else:
        sys.stdout.write(table(entries))
    return 0
