"""Adaptive best-of-N against full best-of-N: generated tokens and accuracy on the shipped
arithmetic held-out set, the same candidates in every arm.

One in-process vLLM engine. Per question, every arm in rotated order samples N candidates
at the same seed (full best-of-N's n=N request seeds its samples seed + i, as adaptive
sampling seeds its candidate i), so an arm differs from full best-of-N only in what it
stopped or never started; the answer is picked by `vote` (or `--select`). Arms:

- `full`: every candidate runs to its end (the reference);
- `agreement`: the running candidates stop once the leader cannot be overtaken;
- `agreement:waveK`: K candidates at a time, another wave only while the majority is
  uncertain (adaptive consistency);
- `confidence[:waveK]`: agreement plus DeepConf online stopping.

Per arm: candidate tokens generated (each server's `usage` counts exactly these), their
ratio to `full` (pooled, and per question with its spread), the N actually started,
accuracy and its paired difference to `full` with a 95% interval, and wall time (on a
shared machine; only the tokens and the accuracy are the targets' figures). The held-out set
is a test set: nothing here is tuned on it.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/adaptive_best_of_n.py \\
        --model qwen2.5-coder-0.5b-instruct --questions 100
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import REPO, machine, md_table, publish, setup_logging, write_results
from tqdm import tqdm

from critic_loop.answers import grade
from critic_loop.builtin_models import TEST_MODEL
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import SamplingOptions
from evaluation.dataset import Question, load_questions
from evaluation.stats import paired_difference

logger = logging.getLogger("bench.adaptive_best_of_n")

HELDOUT = REPO / "data" / "tasks" / "heldout.jsonl"
DEFAULT_ARMS = ["full", "agreement", "agreement:wave4", "confidence:wave4", "agreement:wave2"]


def parse_arm(text: str) -> dict[str, Any]:
    """full | agreement | confidence, optionally :waveK -> SelfCriticConfig fields."""
    mode, _, wave = text.partition(":")
    if mode not in ("full", "agreement", "confidence") or (wave and not wave.startswith("wave")):
        raise SystemExit(f"unknown arm {text!r}: full, agreement or confidence[:waveK]")
    if mode == "full" and wave:
        raise SystemExit("the full arm has no waves")
    return {"adaptive": "off" if mode == "full" else mode,
            "adaptive_wave": int(wave.removeprefix("wave")) if wave else 0}


async def run(args: argparse.Namespace, questions: list[Question],
              checkpoint: Callable[[dict[str, list[dict]]], object]) -> dict[str, list[dict]]:
    """Every question through every arm; `checkpoint(rows)` after each question, so a run
    cut short still leaves its figures."""
    from critic_loop.best_of_n import best_of_n
    from critic_loop.runtime.engines.vllm_async import VLLMEngine
    from critic_loop.runtime.model_store import resolve_model

    engine = VLLMEngine.from_model(resolve_model(args.model), enforce_eager=not args.compiled)
    await engine.warm_up()
    rows: dict[str, list[dict]] = {arm: [] for arm in args.arms}
    try:
        for q, question in enumerate(tqdm(questions, desc="questions", unit="q")):
            messages = [{"role": "user", "content": question.question}]
            prompt = engine.render_chat(messages)
            sampling = SamplingOptions(max_tokens=args.max_tokens,
                                       temperature=args.temperature, seed=1000 + q)
            order = args.arms[q % len(args.arms):] + args.arms[:q % len(args.arms)]
            for arm in order:
                config = SelfCriticConfig(candidates=args.candidates, select=args.select,
                                          seed=q, **parse_arm(arm))
                started = time.monotonic()
                result = await best_of_n(engine, prompt, messages, sampling, config,
                                         f"q{q}-{arm}")
                report = result.report
                rows[arm].append({
                    "question": question.id, "category": question.category,
                    "correct": grade(result.winner.text, question.answer, question.grader),
                    "pass": any(grade(c.text, question.answer, question.grader)
                                for c in result.ranked),
                    "candidate_tokens": report.candidate_usage.completion_tokens,
                    "started": report.adaptive.started if report.adaptive else args.candidates,
                    "stopped": len(report.adaptive.stopped) if report.adaptive else 0,
                    "seconds": round(time.monotonic() - started, 3),
                    "load1": round(machine()["loadavg"][0], 2)})
            checkpoint(rows)
    finally:
        await engine.close()
    return rows


def summarise(rows: dict[str, list[dict]], reference: str = "full") -> list[dict[str, Any]]:
    base = rows[reference]
    base_tokens = sum(r["candidate_tokens"] for r in base)
    out = []
    for arm, arm_rows in rows.items():
        tokens = sum(r["candidate_tokens"] for r in arm_rows)
        per_q = [r["candidate_tokens"] / b["candidate_tokens"]
                 for r, b in zip(arm_rows, base, strict=True) if b["candidate_tokens"]]
        diff, low, high = paired_difference([float(r["correct"]) - float(b["correct"])
                                           for r, b in zip(arm_rows, base, strict=True)])
        out.append({
            "arm": arm, "questions": len(arm_rows),
            "accuracy": statistics.fmean(r["correct"] for r in arm_rows),
            "accuracy_diff": diff, "accuracy_diff_95": [low, high],
            "pass_at_started": statistics.fmean(r["pass"] for r in arm_rows),
            "tokens_per_question": tokens / len(arm_rows),
            "token_ratio": tokens / base_tokens if base_tokens else None,
            "token_ratio_median": statistics.median(per_q) if per_q else None,
            "token_ratio_range": [min(per_q), max(per_q)] if per_q else None,
            "started_mean": statistics.fmean(r["started"] for r in arm_rows),
            "stopped_mean": statistics.fmean(r["stopped"] for r in arm_rows),
            "seconds_median": statistics.median(r["seconds"] for r in arm_rows),
            "load1_range": [min(r["load1"] for r in arm_rows), max(r["load1"] for r in arm_rows)],
        })
    return out


def markdown(summary: list[dict[str, Any]], args: argparse.Namespace) -> str:
    table = md_table(
        ["arm", "accuracy", "vs full (95%)", "pass@started", "tokens/q", "token ratio",
         "per-q ratio median [min, max]", "N started", "stopped", "s/q median", "load"],
        [[s["arm"], f"{s['accuracy']:.1%}",
          f"{s['accuracy_diff']:+.1%} [{s['accuracy_diff_95'][0]:+.1%}, "
          f"{s['accuracy_diff_95'][1]:+.1%}]",
          f"{s['pass_at_started']:.1%}", round(s["tokens_per_question"], 1),
          None if s["token_ratio"] is None else round(s["token_ratio"], 3),
          None if s["token_ratio_median"] is None else
          f"{s['token_ratio_median']:.2f} [{s['token_ratio_range'][0]:.2f}, "
          f"{s['token_ratio_range'][1]:.2f}]",
          round(s["started_mean"], 2), round(s["stopped_mean"], 2), s["seconds_median"],
          s["load1_range"]] for s in summary])
    return (f"# Adaptive best-of-{args.candidates} against full ({args.model})\n\n"
            f"{summary[0]['questions']} arithmetic held-out questions, select "
            f"`{args.select}`, temperature {args.temperature}, max_tokens {args.max_tokens}, "
            "the same seed in every arm, arms interleaved per question.\n\n" + table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", default=TEST_MODEL, help="A built-in model.")
    parser.add_argument("--questions", type=int, default=100, help="Held-out questions.")
    parser.add_argument("--candidates", type=int, default=8, help="N.")
    parser.add_argument("--arms", nargs="+", default=DEFAULT_ARMS,
                        help="full, agreement or confidence, each optionally :waveK; the "
                             "first full arm is the reference (default: %(default)s).")
    parser.add_argument("--select", default="vote", help="The selection strategy.")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--compiled", action="store_true", help="Compile (default: eager).")
    parser.add_argument("--name", default=None,
                        help="Results file stem (default: adaptive_best_of_n_<model>).")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    for arm in args.arms:
        parse_arm(arm)
    if "full" not in args.arms:
        parser.error("the arms must include full, the reference")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    name = args.name or f"adaptive_best_of_n_{Path(args.model).name.split('-instruct')[0]}" \
        .replace(".", "")
    questions = load_questions(HELDOUT, limit=args.questions)
    start_machine = machine()

    def results(rows: dict[str, list[dict]]) -> tuple[dict[str, Any], str]:
        summary = summarise(rows)
        return ({"args": vars(args), "machine_at_start": start_machine,
                 "machine_at_end": machine(), "summary": summary, "rows": rows},
                markdown(summary, args))

    rows = asyncio.run(run(args, questions, lambda rows: write_results(name, *results(rows))))
    return publish(name, *results(rows))


if __name__ == "__main__":
    raise SystemExit(main())
