"""Command-line entry points: `selfcritic train ...` and `selfcritic eval critic|policy ...`.

`train_main` and `eval_main` take the arguments after the subcommand; the `selfcritic`
console script passes them through. Output goes through logging, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluation.critic_eval import CriticReport, PairVerdicts
    from evaluation.pairs import PreferencePair
    from trainer.recipe import Recipe

logger = logging.getLogger("selfcritic.trainer")

TRAIN_EPILOG = """\
examples:
  selfcritic train recipes/cpu-demo.yaml
  selfcritic train recipes/cpu-demo.yaml --set max_steps=10 --set learning_rate=2e-5
  selfcritic train recipes/paper.yaml --set lora=true --set extra_args.logging_dir=tb
  selfcritic train recipes/cpu-demo.yaml --export-only   # export the last checkpoint

recipe fields (each settable in the YAML file or with --set key=value):
"""


def train_main(argv: Sequence[str] | None = None) -> int:
    """`selfcritic train RECIPE.yaml [--set key=value ...]`."""
    # Idle OpenMP threads spin by default; on a small shared CPU two spinning processes
    # slow each other ~10x. Passive waiting costs nothing when the machine is quiet. It
    # only takes effect if torch is not imported yet, hence here and first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from trainer.recipe import RecipeError, describe_fields, load_recipe

    parser = argparse.ArgumentParser(
        prog="selfcritic train", formatter_class=argparse.RawDescriptionHelpFormatter,
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
    args = parser.parse_args(argv)
    _ensure_logging()
    from trainer.loop_recipe import is_loop_recipe

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
    if args.export_only:
        return _export_only(recipe)
    from evaluation.pairs import DataError
    from trainer.train import train

    try:
        result = train(recipe)
    except (DataError, RecipeError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write(f"{result.export_dir}\n")
    return 0


def eval_main(argv: Sequence[str] | None = None) -> int:
    """`selfcritic eval critic|policy|make-tasks ...`: judge accuracy on pairs, answer
    accuracy of strategies (evaluation/), seeded question sets."""
    parser = argparse.ArgumentParser(
        prog="selfcritic eval",
        description="Evaluate models on held-out data: a critic on preference pairs, or "
                    "answer strategies (greedy, majority, self-critic) on verifiable questions.")
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    critic = sub.add_parser(
        "critic", help="judge accuracy on preference pairs",
        description="Judge every pair in both orders (greedy) on the vLLM engine; report "
                    "accuracy with a 95% CI, per-order accuracy, position consistency "
                    "and the invalid-verdict rate.")
    critic.add_argument("--model", default=os.environ.get("SELFCRITIC_MODEL", "default"),
                        help="'default' or a model directory [env SELFCRITIC_MODEL]")
    critic.add_argument("--data", required=True, help="preference pairs (.jsonl/.json/"
                        ".parquet or a save_to_disk directory)")
    critic.add_argument("--judge", choices=("fast", "reason"), default="fast",
                        help="fast: one token restricted to 1/2; reason: think then \\boxed{}")
    critic.add_argument("--max-tokens", type=int, default=256,
                        help="reason-mode token budget per judgment")
    critic.add_argument("--limit", type=int, default=None, help="judge only the first N pairs")
    critic.add_argument("--seed", type=int, default=0, help="data ordering seed")
    critic.add_argument("--max-model-len", type=int, default=2048)
    critic.add_argument("--compile", action="store_true",
                        help="let vLLM compile the model (slower start; default eager)")
    critic.add_argument("--output", type=Path, default=None,
                        help="write the report and every verdict as JSON here")
    curve = sub.add_parser(
        "curve", help="plot a training run's learning curve (PNG)",
        description="Plot held-out judge accuracy (recipe eval_data), greedy policy "
                    "accuracy (a loop recipe's policy_curve) and training reward against "
                    "step from RUN_DIR/metrics.jsonl.")
    curve.add_argument("run_dir", type=Path, help="the recipe's output_dir")
    curve.add_argument("--output", type=Path, default=None,
                       help="PNG to write (default RUN_DIR/learning_curve.png)")
    curve.set_defaults(run=_plot_curve)
    from evaluation.cli import add_eval_parsers

    add_eval_parsers(sub)  # `policy` and `make-tasks`; they live in evaluation/
    args = parser.parse_args(argv)
    _ensure_logging()
    if args.what != "critic":
        return int(args.run(args))
    from evaluation.pairs import DataError, load_pairs

    try:
        pairs = load_pairs(args.data, seed=args.seed).pairs[: args.limit]
    except DataError as error:
        logger.error("%s", error)
        return 1
    report, verdicts = asyncio.run(_evaluate_on_vllm(args, pairs))
    sys.stdout.write(report.summary() + "\n")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        payload = {"report": report.to_dict(), "data": str(args.data),
                   "verdicts": [v.__dict__ for v in verdicts]}
        args.output.write_text(json.dumps(payload, indent=2) + "\n")
        logger.info("wrote %s", args.output)
    return 0


async def _evaluate_on_vllm(args: argparse.Namespace, pairs: list[PreferencePair]
                            ) -> tuple[CriticReport, list[PairVerdicts]]:
    from critic_loop.engines.vllm_async import EngineConfig, VLLMEngine
    from critic_loop.model_store import resolve_model
    from evaluation.critic_eval import judge_pairs, score

    model = resolve_model(args.model)
    engine = VLLMEngine.start(EngineConfig(
        model=str(model.path), served_name=model.served_name,
        max_model_len=args.max_model_len, enforce_eager=not args.compile, seed=args.seed))
    try:
        verdicts = await judge_pairs(engine, pairs, mode=args.judge, max_tokens=args.max_tokens,
                                     seed=args.seed)
    finally:
        await engine.close()
    return score(verdicts, model=str(args.model), mode=args.judge), verdicts


def _plot_curve(args: argparse.Namespace) -> int:
    from evaluation.curve_plot import plot_curve

    metrics = args.run_dir / "metrics.jsonl"
    if not metrics.is_file():
        logger.error("no metrics.jsonl in %s", args.run_dir)
        return 1
    out = plot_curve(metrics, args.output or args.run_dir / "learning_curve.png")
    if out is None:
        return 1
    sys.stdout.write(f"{out}\n")
    return 0


def _export_only(recipe: Recipe) -> int:
    from critic_loop.model_store import resolve_model
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
        "judge": judge_metadata(recipe.judge_mode), "steps": step, "checkpoint": str(checkpoint)})
    sys.stdout.write(f"{out}\n")
    return 0


def _ensure_logging() -> None:
    """Console logging at INFO when the caller (e.g. `selfcritic`) has not set it up."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["--help"]
    entry = eval_main if command == "eval" else train_main
    raise SystemExit(entry(rest if command in ("train", "eval") else sys.argv[1:]))
