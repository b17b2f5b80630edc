"""`selfcritic eval critic` and `eval curve`: a critic's judge accuracy on preference pairs,
and a training run's learning curve.

`add_parsers` hangs them under `selfcritic eval` (evaluation/cli.py); results go to
stdout, everything else logs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaluation.critic_eval import CriticReport, PairVerdicts
    from evaluation.pairs import PreferencePair

logger = logging.getLogger("selfcritic.eval")


def add_parsers(sub: Any) -> None:
    """Add `critic` and `curve` to the `selfcritic eval` subparsers."""
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
    critic.set_defaults(run=run_critic)
    curve = sub.add_parser(
        "curve", help="plot a training run's learning curve (PNG)",
        description="Plot held-out judge accuracy (recipe eval_data) and training reward "
                    "against step from RUN_DIR/metrics.jsonl.")
    curve.add_argument("run_dir", type=Path, help="the recipe's output_dir")
    curve.add_argument("--output", type=Path, default=None,
                       help="PNG to write (default RUN_DIR/learning_curve.png)")
    curve.set_defaults(run=run_curve)


def run_critic(args: argparse.Namespace) -> int:
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
    from critic_loop.runtime.engines.vllm_async import VLLMEngine
    from evaluation.critic_eval import judge_pairs, score

    engine = VLLMEngine.from_model(args.model, max_model_len=args.max_model_len,
                                   enforce_eager=not args.compile, seed=args.seed)
    try:
        verdicts = await judge_pairs(engine, pairs, mode=args.judge, max_tokens=args.max_tokens,
                                     seed=args.seed)
    finally:
        await engine.close()
    return score(verdicts, model=str(args.model), mode=args.judge), verdicts


def run_curve(args: argparse.Namespace) -> int:
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
