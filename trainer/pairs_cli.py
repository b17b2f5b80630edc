"""`selfcritic data pairs`: mine on-policy preference pairs (trainer/pairs.py) from the flags.

`add_parser(subparsers)` hangs `pairs` under `selfcritic data` (selfcritic/cli.py).
Results go to stdout; everything else logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger("selfcritic.data")

EPILOG = """\
examples:
  selfcritic data pairs --model smollm2-135m-instruct --tasks 200 --output runs/pairs-135m
  selfcritic data pairs --url http://127.0.0.1:8000 --tasks 300 --code-tasks 40 --n 8
  selfcritic data pairs --model qwen2.5-coder-0.5b-instruct --engine vllm --code-tasks 40

writes OUTPUT/train.jsonl and OUTPUT/heldout.jsonl (prompt/chosen/rejected rows with their
provenance; disjoint questions), OUTPUT/samples.jsonl (every graded sample) and
OUTPUT/summary.json. Only questions with both right and wrong samples give pairs.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `pairs` to the `selfcritic data` subcommands (selfcritic/cli.py's DATA_PARTS)."""
    return add_pairs_parser(subparsers)


def add_pairs_parser(sub: Any) -> argparse.ArgumentParser:
    from trainer.pairs_job import ENGINES, PairsJob

    defaults = PairsJob()
    pairs = sub.add_parser(
        "pairs", help="on-policy (right, wrong) pairs of the model's own answers",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Sample N answers from a served or local model to verifiable training "
                    "questions, grade them (numeric/exact/choice/regex; code in the sandbox), "
                    "and write (right, wrong) pairs of the same question in the trainer's row "
                    "shape, train and held-out from disjoint questions.")
    pairs.add_argument("--url", default=None, help="an OpenAI-compatible server to sample "
                       "(omit to sample --model locally)")
    pairs.add_argument("--model", default=defaults.model, help="without --url: a built-in "
                       "name or model directory; with --url: the model name to request")
    pairs.add_argument("--engine", choices=ENGINES, default=defaults.engine,
                       help="without --url: sample in-process with transformers, or serve "
                            "the model with vLLM for the run")
    pairs.add_argument("--questions", type=Path, action="append", default=[],
                       help="a JSONL question file (training questions; repeatable)")
    pairs.add_argument("--tasks", type=int, default=defaults.tasks,
                       help="seeded questions from the arithmetic tasks' train split")
    pairs.add_argument("--code-tasks", type=int, default=defaults.code_tasks,
                       help="seeded code problems (families disjoint from HumanEval)")
    pairs.add_argument("--task-seed", type=int, default=defaults.task_seed)
    pairs.add_argument("--n", dest="samples", type=int, default=defaults.samples,
                       help="answers sampled per question")
    pairs.add_argument("--temperature", type=float, default=defaults.temperature)
    pairs.add_argument("--max-tokens", type=int, default=defaults.max_tokens)
    pairs.add_argument("--code-max-tokens", type=int, default=defaults.code_max_tokens)
    pairs.add_argument("--pairs-per-question", type=int, default=defaults.pairs_per_question)
    pairs.add_argument("--heldout-share", type=float, default=defaults.heldout_share,
                       help="share of the questions whose pairs are held out")
    pairs.add_argument("--seed", type=int, default=defaults.seed)
    pairs.add_argument("--concurrency", type=int, default=defaults.concurrency,
                       help="requests in flight (with --url or --engine vllm)")
    pairs.add_argument("--batch-questions", type=int, default=defaults.batch_questions,
                       help="questions sampled per round (one batch with transformers)")
    pairs.add_argument("--exec-timeout-s", type=float, default=defaults.exec_timeout_s)
    pairs.add_argument("--allow-unsandboxed-exec", action="store_true",
                       help="run model-written code UNCONFINED when no sandbox works")
    pairs.add_argument("--output", type=Path, default=Path(defaults.output))
    pairs.set_defaults(run=run_pairs)
    return pairs


def run_pairs(args: argparse.Namespace) -> int:
    from evaluation.client import EndpointError
    from trainer.pairs_job import PairsJob, run_pairs_job

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        job = PairsJob(output=str(args.output), model=args.model, url=args.url,
                       engine=args.engine, questions=tuple(str(p) for p in args.questions),
                       tasks=args.tasks, code_tasks=args.code_tasks, task_seed=args.task_seed,
                       samples=args.samples, temperature=args.temperature,
                       max_tokens=args.max_tokens, code_max_tokens=args.code_max_tokens,
                       pairs_per_question=args.pairs_per_question,
                       heldout_share=args.heldout_share, seed=args.seed,
                       concurrency=args.concurrency, batch_questions=args.batch_questions,
                       exec_timeout_s=args.exec_timeout_s,
                       allow_unsandboxed_exec=args.allow_unsandboxed_exec)
        result, paths = run_pairs_job(job)
    except (ValueError, OSError, RuntimeError, EndpointError) as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write(json.dumps({**result.summary(),
                                 "files": {k: str(v) for k, v in paths.items()}}, indent=2) + "\n")
    return 0
