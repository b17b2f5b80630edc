"""`selfcritic eval select` and `selfcritic eval calibrate`: their flags and their output.

`add_select_parsers` hangs both under `selfcritic eval` (evaluation/cli.py calls it); this
is the layer that writes results to stdout, everything else logs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from evaluation.cli_flags import add_api_key_flag, add_dataset_flags, fields_from_args

logger = logging.getLogger("selfcritic.eval")

CANDIDATES_FORMAT = """\
candidates file (--candidates, JSONL, one row per question):
  {"task_id": ID, "greedy": C, "samples": [C, ...]}     (or "id" for "task_id")
  C = {"text": str, "finish_reason": "stop"|"length",
       "logprobs": [[token_logprob, [top_logprob, ...]], ...]}   (logprobs optional)
  ID is the question's id in --data (the shipped task sets' "id", HumanEval's task_id).
  `eval policy --save-candidates FILE` writes one; so does any script sampling with
  logprobs=True, top_logprobs=k. Without logprobs, confidence ranks like vote.

strategies (--strategies, comma-separated): <select>[-fast|-reason][-answer]
  knockout-fast|reason   the seeded bracket (N-1 matches)
  league-fast|reason     every pair of entrants, by win rate (N(N-1)/2 matches)
  vote                   the answer most candidates gave (no judge)
  confidence             DeepConf's confidence-weighted vote (no judge)
  hybrid-fast|reason     vote and confidence rank; the judge, weighted by
                         --judge-weight, settles the top two (one match)
  -answer                knockout/league over distinct answers (merge: "answer")
"""

SELECT_EPILOG = CANDIDATES_FORMAT + """
examples:
  selfcritic eval select --candidates runs/cands.jsonl --data data/tasks/train.jsonl \\
      --url http://127.0.0.1:8000 --tokenizer ~/.cache/selfcritic/models/smollm2-135m-instruct \\
      --strategies knockout-fast,league-fast,vote,confidence,hybrid-fast --n 8 \\
      --output runs/select
  selfcritic eval select --candidates cands.jsonl --data data/tasks/heldout.jsonl \\
      --url http://127.0.0.1:8000 --tokenizer MODEL_DIR --n 8 --include-greedy --limit 20
"""

CALIBRATE_EPILOG = CANDIDATES_FORMAT + """
The data must be disjoint from every test set: the shipped held-out sets and HumanEval
are refused. Without --candidates, greedy and N samples per question are drawn first
through `eval policy` (written to OUTPUT/candidates.jsonl). Without --url, --model is
served for the run.

examples:
  selfcritic eval calibrate --model default --data data/tasks/train.jsonl --n 8 \\
      --output runs/calibrate
  selfcritic eval calibrate --model runs/critic --data data/tasks/train.jsonl \\
      --url http://127.0.0.1:8000 --candidates runs/train-cands.jsonl --dry-run
"""


def add_select_parsers(sub: Any) -> None:
    """Add `select` and `calibrate` to the `selfcritic eval` subparsers."""
    select = sub.add_parser(
        "select", help="every selection strategy on the same sampled candidates",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SELECT_EPILOG,
        description="Sample once, select many: for each question, build the pool the server\n"
                    "would (N samples, or the greedy decode and N-1 samples) from a candidates\n"
                    "file and run each selection strategy with the server's own code, judging\n"
                    "on the served model (--url). Per strategy: accuracy with a 95% Wilson CI,\n"
                    "pass@N, selection efficiency, greedy accuracy, mean sample accuracy\n"
                    "(unbiased pass@1), wins/losses against greedy, judge calls and tokens,\n"
                    "order agreement and p_comp. Writes select.json, select.md and\n"
                    "picks.jsonl to --output.")
    select.add_argument("--candidates", type=Path, required=True, help="candidates JSONL")
    select.add_argument("--data", type=Path, required=True, help="the questions (JSONL)")
    select.add_argument("--url", required=True, help="the server that judges, e.g. "
                        "http://127.0.0.1:8000 (selfcritic serve or vLLM)")
    select.add_argument("--model", help="the served model's name (default: the endpoint's)")
    select.add_argument("--output", type=Path, default=Path("runs/eval-select"),
                        help="output directory (default runs/eval-select)")
    _judge_flags(select)
    select.add_argument("--include-greedy", action="store_true",
                        help="pool = the greedy candidate + the first N-1 samples")
    code = select.add_argument_group("code questions (graded by running them, sandboxed)")
    code.add_argument("--exec-grouping", action="store_true",
                      help="vote/confidence/hybrid group code candidates by their outputs on "
                           "the prompt's own examples; one contradicting a stated output "
                           "gets no vote (else each program is its own group)")
    code.add_argument("--exec-timeout-s", type=float, default=10.0,
                      help="wall limit of one program (CPU limit alike)")
    code.add_argument("--exec-workers", type=int, default=2, help="programs run at once")
    code.add_argument("--allow-unsandboxed-exec", action="store_true",
                      help="run programs without bubblewrap/namespaces where neither works "
                           "(unsafe: model-written code)")
    select.set_defaults(run=run_select)

    calibrate = sub.add_parser(
        "calibrate", help="measure the strategies on held-out data; store the best as the "
                          "model's :self-critic default",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=CALIBRATE_EPILOG,
        description="Run `eval select` (with and without --include-greedy) on data disjoint\n"
                    "from every test set, pick the most accurate strategy (ties: fewer judge\n"
                    "calls) and write it with its figures under `selection` in the model's\n"
                    "selfcritic-export.json. `selfcritic serve --model DIR` then uses it as\n"
                    "the default; a request's self_critic fields still win.")
    calibrate.add_argument("--model", required=True,
                           help="'default' or a model directory: where the result is written")
    calibrate.add_argument("--data", type=Path, required=True, help="held-out questions")
    calibrate.add_argument("--url", help="a server already serving --model (default: serve "
                           "it for the run)")
    calibrate.add_argument("--served-model", help="the model's name at --url")
    calibrate.add_argument("--candidates", type=Path,
                           help="candidates JSONL (default: sample them first)")
    calibrate.add_argument("--output", type=Path, default=Path("runs/eval-calibrate"),
                           help="output directory (default runs/eval-calibrate)")
    _judge_flags(calibrate)
    calibrate.add_argument("--greedy-options", choices=("both", "yes", "no"), default="both",
                           help="pools measured: with the greedy candidate, without, or both "
                                "(default both)")
    calibrate.add_argument("--max-tokens", type=int, default=64,
                           help="answer token budget when sampling (default 64)")
    calibrate.add_argument("--temperature", type=float, default=0.7,
                           help="sampling temperature when sampling (default 0.7)")
    calibrate.add_argument("--dry-run", action="store_true",
                           help="measure and report, but write nothing into the model")
    calibrate.add_argument("--serve-arg", dest="serve_args", action="append", default=[],
                           metavar="ARG", help="an extra `selfcritic serve` argument when "
                           "serving --model (repeatable)")
    calibrate.set_defaults(run=run_calibrate)


def _judge_flags(parser: argparse.ArgumentParser) -> None:
    from evaluation.selectors import DEFAULT_SELECTORS

    parser.add_argument("--tokenizer", help="the served model's local directory (tokenizer "
                        "and chat template; default: what the endpoint reports)")
    add_api_key_flag(parser)
    parser.add_argument("--strategies", default=",".join(DEFAULT_SELECTORS),
                        help=f"comma-separated (default {','.join(DEFAULT_SELECTORS)})")
    parser.add_argument("--n", type=int, default=8, help="pool size N (default 8)")
    parser.add_argument("--k", type=int, default=2, help="judgments per match K (default 2)")
    parser.add_argument("--judge-max-tokens", type=int, default=256,
                        help="token budget of one reason-mode judgment (default 256)")
    parser.add_argument("--judge-weight", type=float, default=None,
                        help="hybrid's judge weight in [0, 1] (default the server's)")
    parser.add_argument("--seed", type=int, default=0, help="seeds each question's bracket")
    parser.add_argument("--template", default="{question}",
                        help="the user message the candidates answered ({question} replaced)")
    parser.add_argument("--limit", type=int, help="only the first L questions")
    parser.add_argument("--concurrency", type=int, default=2, help="questions at once")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="per-request timeout")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: on a terminal)")
    add_dataset_flags(parser)


def _settings(args: argparse.Namespace, include_greedy: bool) -> Any:
    from critic_loop.config import DEFAULT_JUDGE_WEIGHT
    from evaluation.selectors import SelectSettings

    weight = DEFAULT_JUDGE_WEIGHT if args.judge_weight is None else args.judge_weight
    if not 0 <= weight <= 1:
        raise ValueError(f"--judge-weight must be in [0, 1], got {weight}")
    return SelectSettings(n=args.n, include_greedy=include_greedy, comparisons=args.k,
                          judge_max_tokens=args.judge_max_tokens, judge_weight=weight,
                          seed=args.seed)


def run_select(args: argparse.Namespace) -> int:
    """Run `eval select`; print the table; 0 when some strategy was scored."""
    from evaluation.client import EndpointError
    from evaluation.policy import code_scoring
    from evaluation.select_eval import evaluate_selection
    from evaluation.select_report import format_select_table, pool_figures
    from evaluation.selectors import parse_selectors

    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        with contextlib.ExitStack() as stack:
            code = (stack.enter_context(code_scoring(
                args.exec_timeout_s, args.allow_unsandboxed_exec, args.exec_workers,
                args.exec_grouping)) if _has_code(args) else None)
            result = evaluate_selection(_select_config(args, parse_selectors, code))
    except (ValueError, RuntimeError, OSError, EndpointError) as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write(format_select_table(pool_figures(result.results), result.rows,
                                         result.meta) + "\n")
    for kind, path in result.paths.items():
        logger.info("wrote %s: %s", kind, path)
    return 0 if any(r.accuracy is not None for r in result.rows) else 1


def _has_code(args: argparse.Namespace) -> bool:
    from evaluation.dataset import load_questions

    questions = load_questions(args.data, fields_from_args(args), args.limit)
    return any(q.code is not None for q in questions)


def _select_config(args: argparse.Namespace, parse_selectors: Any, code: Any) -> Any:
    from evaluation.select_eval import SelectEvalConfig

    return SelectEvalConfig(
            candidates=args.candidates, data=args.data, output=args.output, url=args.url,
            model=args.model, tokenizer=args.tokenizer, api_key=args.api_key,
            selectors=parse_selectors(args.strategies),
            settings=_settings(args, args.include_greedy), template=args.template,
            fields=fields_from_args(args), limit=args.limit, concurrency=args.concurrency,
            timeout_s=args.timeout_s, progress=args.progress, code=code)


def run_calibrate(args: argparse.Namespace) -> int:
    """Run `eval calibrate`; print the winner and where it was written."""
    from evaluation.calibrate import CalibrateConfig, calibrate
    from evaluation.client import EndpointError
    from evaluation.selectors import parse_selectors

    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = {"both": (False, True), "yes": (True,), "no": (False,)}[args.greedy_options]
    try:
        config = CalibrateConfig(
            model=args.model, data=args.data, output=args.output, url=args.url,
            served_model=args.served_model, candidates=args.candidates,
            tokenizer=args.tokenizer, api_key=args.api_key,
            selectors=parse_selectors(args.strategies),
            settings=tuple(_settings(args, g) for g in options), template=args.template,
            fields=fields_from_args(args), limit=args.limit, concurrency=args.concurrency,
            timeout_s=args.timeout_s, max_tokens=args.max_tokens,
            temperature=args.temperature, dry_run=args.dry_run,
            serve_args=tuple(args.serve_args), progress=args.progress)
        result = calibrate(config)
    except (ValueError, RuntimeError, OSError, EndpointError) as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write(result.summary() + "\n")
    return 0
