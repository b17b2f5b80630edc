"""Base against trained critic on on-policy data, in-process (transformers, no server).

Three figures per model, the same for both:
- judge: fast-judge accuracy in both orders (= p_comp of one comparison) and K=2 match
  accuracy on the held-out on-policy pairs (`data pairs` heldout.jsonl), scored as the
  training curve scores them (evaluation/critic_curve.py, evaluation/critic_eval.py);
- policy: greedy accuracy with its 95% interval on a verifiable question file (the
  arithmetic held-out set), graded by critic_loop.answers (trainer/policy_curve.py);
- best-of-N with the judge swapped and the candidates fixed: a knockout over each held-out
  question's N mined samples of the *base* model (adjacent pairs, a bye for an odd one,
  identical answers merged, K=2 in both orders, a split decided by the summed
  probabilities), against the oracle (any right) and a random pick (mean sample accuracy).

An export with a judge adapter judges with the adapter on and answers without it, as the
server does.

  HF_HUB_OFFLINE=1 .venv/bin/python bench/onpolicy_critic.py --pairs runs/cpu-onpolicy/pairs \\
      --base smollm2-135m-instruct --trained runs/cpu-onpolicy/final
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

logger = logging.getLogger("bench.onpolicy_critic")


def judge_figures(model: Any, tokenizer: Any, pairs_path: Path, curve_pairs: int
                  ) -> dict[str, Any]:
    """Over every held-out pair, and over those after the first `curve_pairs` (the ones the
    training curve, and so the best-checkpoint choice, never saw)."""
    from evaluation.critic_curve import HeldOutCurve
    from evaluation.critic_eval import score
    from evaluation.pairs import load_pairs

    pairs = load_pairs(pairs_path, seed=0).pairs
    verdicts = HeldOutCurve(pairs, tokenizer, Path("/dev/null"), 1).verdicts(model)
    figures = {}  # one verdict (both orders) per pair, in file order
    for name, part in (("all", verdicts), ("unseen", verdicts[curve_pairs:])):
        if not part:
            continue
        report = score(part, model="", mode="fast")
        figures[name] = {
            "pairs": report.pairs, "accuracy": report.accuracy, "ci95": report.accuracy_ci95,
            "accuracy_as_given": report.accuracy_as_given,
            "accuracy_swapped": report.accuracy_swapped,
            "match_accuracy": report.match_accuracy, "says_1": report.first_position_rate}
    return figures


def policy_figures(model: Any, tokenizer: Any, data: Path, limit: int) -> dict[str, Any]:
    from evaluation.dataset import load_questions
    from evaluation.stats import wilson_interval
    from trainer.policy_curve import PolicyCurve

    questions = load_questions(data, limit=limit)
    right, _ = PolicyCurve(questions, tokenizer, Path("/dev/null"), 1).accuracy(model)
    return {"questions": len(questions), "greedy_accuracy": right / len(questions),
            "ci95": wilson_interval(right, len(questions))}


def knockout_figures(model: Any, tokenizer: Any, samples_path: Path, prompts: dict[str, str]
                     ) -> dict[str, Any]:
    """Knockout winners over each held-out question's fixed samples, judged by `model`."""
    from evaluation.critic_curve import HeldOutCurve
    from evaluation.pairs import PreferencePair

    rows = [json.loads(line) for line in samples_path.read_text().splitlines()]
    rows = [r for r in rows if r["split"] == "heldout" and r["question_id"] in prompts]
    brackets = {}
    for r in rows:  # identical answers (whitespace-normalised) merged before judging
        seen, entrants = set(), []
        for text, ok in zip(r["texts"], r["correct"], strict=True):
            key = " ".join(text.split())
            if key not in seen:
                seen.add(key)
                entrants.append((text, ok))
        brackets[r["question_id"]] = entrants
    while any(len(e) > 1 for e in brackets.values()):
        matches = [(qid, i) for qid, e in brackets.items() for i in range(0, len(e) - 1, 2)]
        pairs = [PreferencePair(prompts[qid], brackets[qid][i][0], brackets[qid][i + 1][0], 1)
                 for qid, i in matches]
        p = HeldOutCurve(pairs, tokenizer, Path("/dev/null"), 1).first_probabilities(model)
        winners: dict[str, list] = {qid: [] for qid in brackets}
        for k, (qid, i) in enumerate(matches):
            # P(first wins) as given + P(first wins) when shown second = 1 - p_swapped
            first = p[2 * k] + (1 - p[2 * k + 1])
            winners[qid].append(brackets[qid][i] if first >= 1.0 else brackets[qid][i + 1])
        for qid, entrants in brackets.items():
            if len(entrants) % 2:
                winners[qid].append(entrants[-1])  # the bye
            if len(entrants) > 1:
                brackets[qid] = winners[qid]
    right = sum(e[0][1] for e in brackets.values())
    return {"questions": len(rows), "knockout_accuracy": right / max(1, len(rows)),
            "pass_at_n": sum(any(r["correct"]) for r in rows) / max(1, len(rows)),
            "mean_sample_accuracy": sum(sum(r["correct"]) / len(r["correct"]) for r in rows)
            / max(1, len(rows))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, required=True, help="a `data pairs` output dir")
    parser.add_argument("--base", required=True, help="built-in name or model directory")
    parser.add_argument("--trained", required=True, help="the trained export directory")
    parser.add_argument("--policy-data", type=Path, default=REPO / "data/tasks/heldout.jsonl")
    parser.add_argument("--policy-limit", type=int, default=100)
    parser.add_argument("--curve-pairs", type=int, default=100,
                        help="held-out pairs the training curve used (the recipe's eval_pairs): "
                             "judge figures are also given for the rest")
    parser.add_argument("--skip", default="", help="comma list of judge,policy,knockout")
    parser.add_argument("--which", default="base,trained", help="the models to measure")
    parser.add_argument("--knockout-limit", type=int, default=None,
                        help="knockouts on the first N held-out questions only")
    parser.add_argument("--output", type=Path, default=REPO / "bench/results/onpolicy_critic.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from critic_loop.runtime.model_store import resolve_model
    from trainer.loop import heldout_questions
    from trainer.pairs_job import PairsJob

    summary = json.loads((args.pairs / "summary.json").read_text())
    job = PairsJob.from_dict({k: v for k, v in summary["job"].items()})
    prompts = {q.id: q.question for q in heldout_questions(job)}
    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, Any] = {"pairs": str(args.pairs), "load_before": _load()}
    if args.knockout_limit is not None:
        prompts = dict(list(prompts.items())[:args.knockout_limit])
    chosen = set(args.which.split(","))
    for name, where in (("base", args.base), ("trained", args.trained)):
        if name not in chosen:
            continue
        path = resolve_model(where).path
        policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        judge, adapter = _judge_model(path, policy)
        tokenizer = AutoTokenizer.from_pretrained(path)
        figures: dict[str, Any] = {"model": str(path),
                                   "judge_adapter": str(adapter.path) if adapter else None}
        parts = {"judge": (judge, judge_figures, args.pairs / "heldout.jsonl", args.curve_pairs),
                 "policy": (policy, policy_figures, args.policy_data, args.policy_limit),
                 "knockout": (judge, knockout_figures, args.pairs / "samples.jsonl", prompts)}
        for part, (model, run, *extra) in parts.items():
            if part in skip:
                continue
            started = time.monotonic()
            figures[part] = {**run(model, tokenizer, *extra), "seconds": round(time.monotonic() - started, 1)}
            logger.info("%s %s: %s", name, part, figures[part])
        results[name] = figures
    results["load_after"] = _load()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(json.dumps(results, indent=2) + "\n")


def _judge_model(path: Path, policy: Any) -> tuple[Any, Any]:
    """The model that judges: `policy` itself, or, for an export with a judge adapter
    (critic_loop/runtime/judge_adapter.py), a second copy with the adapter on, as the
    server runs judgments with it and answers without it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from critic_loop.runtime.judge_adapter import find_judge_adapter

    adapter = find_judge_adapter(path)
    if adapter is None:
        return policy, None
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return PeftModel.from_pretrained(base, adapter.path).eval(), adapter


def _load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


if __name__ == "__main__":
    main()
