"""`selfcritic train RECIPE.yaml [--set key=value ...]`: its flags and its output.

`add_parser` hangs `train` on the `selfcritic` parser (selfcritic/cli.py). Output goes
through logging, the export directory to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.recipe import Recipe

logger = logging.getLogger("selfcritic.trainer")

TRAIN_EPILOG = """\
examples:
  selfcritic train recipes/cpu-demo.yaml
  selfcritic train recipes/cpu-demo.yaml --set grpo.max_steps=10 --set grpo.learning_rate=2e-5
  selfcritic train recipes/paper.yaml --set lora=true --set grpo.mask_truncated_completions=true
  selfcritic train recipes/cpu-demo.yaml --export-only   # export the last checkpoint
Ctrl-C stops after the current step and still exports; a second Ctrl-C stops at once.

recipe fields (each settable in the YAML file or with --set key=value; a GRPOConfig
field also as --set NAME=value):
"""


def add_parser(subparsers: Any) -> None:
    """`selfcritic train`."""
    from trainer.recipe import describe_fields

    parser = subparsers.add_parser(
        "train", help="Train a critic with GRPO from a YAML recipe.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a pairwise critic with GRPO (TRL) from a YAML recipe, resuming "
                    "from the last checkpoint, and export a directory `selfcritic serve "
                    "--model DIR` serves.",
        epilog=TRAIN_EPILOG + describe_fields())
    parser.add_argument("recipe", nargs="?", help="YAML recipe (omit for all defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a recipe field (repeatable)")
    parser.add_argument("--print-recipe", action="store_true",
                        help="print the resolved recipe as JSON and exit")
    parser.add_argument("--export-only", action="store_true",
                        help="export the last complete checkpoint without training")
    parser.set_defaults(run=run_train, cli_log_level="info")


def run_train(args: argparse.Namespace) -> int:
    # Idle OpenMP threads spin by default; on a small shared CPU two spinning processes
    # slow each other ~10x. Passive waiting costs nothing when the machine is quiet. It
    # only takes effect if torch is not imported yet, hence here and first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from trainer.loop_recipe import is_loop_recipe
    from trainer.recipe import RecipeError, load_recipe

    if args.recipe and is_loop_recipe(args.recipe):  # pairs → training → export (loop.py)
        from trainer.loop_cli import run_loop_recipe

        return run_loop_recipe(args.recipe, args.overrides, print_only=args.print_recipe,
                               export_only=_export_only if args.export_only else None)
    try:
        recipe = load_recipe(args.recipe, args.overrides)
    except RecipeError as error:
        logger.error("%s", error)
        return 2
    if args.print_recipe:
        sys.stdout.write(json.dumps(recipe.to_dict(), indent=2) + "\n")
        return 0
    try:
        if args.export_only:
            return _export_only(recipe)
        from trainer.train import train
    except ImportError as exc:
        logger.error("Training needs the train extra: pip install 'selfcritic[train]' (%s)", exc)
        return 1
    from evaluation.pairs import DataError

    try:
        result = train(recipe)
    except (DataError, RecipeError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write(f"{result.export_dir}\n")
    return 0


def _export_only(recipe: Recipe) -> int:
    from critic_loop.runtime.model_store import resolve_model
    from trainer.export import export_checkpoint, judge_metadata
    from trainer.train import last_complete_checkpoint

    checkpoint = last_complete_checkpoint(recipe.output_dir)
    if checkpoint is None:
        logger.error("no complete checkpoint in %s", recipe.output_dir)
        return 1
    base = resolve_model(recipe.model)
    step = int(checkpoint.name.split("-")[-1])
    out = export_checkpoint(checkpoint, recipe.final_dir, base_dir=base.path, metadata={
        "base_model": recipe.model, "recipe": recipe.to_dict(),
        "judge": judge_metadata(recipe.judge_mode), "steps": step, "checkpoint": str(checkpoint)},
        judge_adapter=recipe.judge_adapter)
    sys.stdout.write(f"{out}\n")
    return 0
