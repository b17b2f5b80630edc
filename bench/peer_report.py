"""The peer benchmark's figures: per-arm summaries and the issue's targets as paired ratios.

Every arm answered the same questions in the same run (`bench/peer_optillm.py`), so a
target compares two arms question by question: the median of the per-question ratios, with
their least and greatest as the spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from _common import md_table, percentile, rounded

Rows = dict[str, list[dict[str, Any]]]


def _share(values: Sequence[bool]) -> float | None:
    return rounded(sum(values) / len(values)) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.mean(values), 1) if values else None


def summarise(rows: Rows) -> list[dict[str, Any]]:
    out = []
    for name, results in rows.items():
        ok = [r for r in results if r["status"] == 200]
        seconds = [r["seconds"] for r in ok]
        kinds = sorted({r["kind"] for r in results})
        out.append({
            "arm": name, "ok": len(ok), "questions": len(results),
            "median_s": rounded(statistics.median(seconds)) if seconds else None,
            "p90_s": rounded(percentile(seconds, 90)),
            "range_s": [min(seconds), max(seconds)] if seconds else None,
            "accuracy": _share([r["correct"] for r in ok]),
            "accuracy_by_kind": {k: _share([r["correct"] for r in ok if r["kind"] == k])
                                 for k in kinds},
            "pass_at_n": _share([r["pass"] for r in ok if "pass" in r]),
            "completion_tokens_per_question": _mean([r["completion_tokens"] for r in ok]),
            "candidate_tokens_per_question": _mean([r["candidate_tokens"] for r in ok
                                                    if "candidate_tokens" in r]),
            "started_per_question": _mean([r["started"] for r in ok if r.get("started")]),
            "load1_range": [min(r["load1"] for r in results), max(r["load1"] for r in results)]
            if results else None,
        })
    return out


def paired(rows: Rows, numerator: str, denominator: str, key: str = "seconds"
           ) -> dict[str, Any] | None:
    """Per question answered by both arms: numerator's `key` over denominator's."""
    if numerator not in rows or denominator not in rows:
        return None
    top = {r["question"]: r for r in rows[numerator] if r["status"] == 200}
    ratios = [top[r["question"]][key] / r[key] for r in rows[denominator]
              if r["status"] == 200 and r["question"] in top and r[key]]
    if not ratios:
        return None
    return {"of": numerator, "over": denominator, "by": key, "questions": len(ratios),
            "median": round(statistics.median(ratios), 2),
            "range": [round(min(ratios), 2), round(max(ratios), 2)]}


def accuracy(rows: Rows, arm: str) -> float | None:
    return _share([r["correct"] for r in rows.get(arm, []) if r["status"] == 200])


def token_ratio(rows: Rows, arm: str, full: str) -> dict[str, Any] | None:
    """Candidate tokens of `arm` over `full`'s, summed over the questions both answered."""
    if arm not in rows or full not in rows:
        return None
    mine = {r["question"]: r.get("candidate_tokens") for r in rows[arm] if r["status"] == 200}
    pairs = [(mine[r["question"]], r.get("candidate_tokens")) for r in rows[full]
             if r["status"] == 200 and mine.get(r["question"]) is not None
             and r.get("candidate_tokens")]
    if not pairs:
        return None
    return {"arm": arm, "full": full, "questions": len(pairs),
            "ratio": round(sum(a for a, _ in pairs) / sum(b for _, b in pairs), 3),
            "accuracy": accuracy(rows, arm), "full_accuracy": accuracy(rows, full)}


def targets(rows: Rows, ns: Sequence[int]) -> dict[str, Any]:
    ours = sorted({name.rsplit("@", 1)[0] for name in rows
                   if "@" in name and not name.startswith(("optillm", "plain"))})
    speed = []
    for n in ns:
        for strategy in [*ours, "optillm-sc"]:
            arm = f"{strategy}@{n}" if strategy != "optillm-sc" else "optillm-sc@5"
            if strategy == "optillm-sc" and n != 8:
                continue
            ratio = paired(rows, f"optillm-bon@{n}", arm)
            if ratio:
                speed.append({**ratio, "n": n, "accuracy": accuracy(rows, arm),
                              "bon_accuracy": accuracy(rows, f"optillm-bon@{n}")})
    cost = [r for r in (paired(rows, f"{s}@8", "plain@8")
                        for s in ("knockout-fast", "knockout-fast-answer", "vote", "hybrid"))
            if r]
    for r in cost:
        r["accuracy"], r["plain_accuracy"] = accuracy(rows, r["of"]), accuracy(rows, "plain@8")
    adaptive = [r for n in ns for arm in ("vote-adaptive", "vote-adaptive-confidence")
                for full in ("vote", "knockout-fast", "knockout-fast-answer")
                if (r := token_ratio(rows, f"{arm}@{n}", f"{full}@{n}"))]
    return {"speedup_over_bon": speed, "best_of_8_over_plain": cost,
            "adaptive_tokens": adaptive,
            "plain_chat": paired(rows, "plain-ours@1", "plain-vllm@1"),
            "plain_chat_same_tokens": paired(rows, "plain-ours@1", "plain-vllm@1",
                                             "completion_tokens")}


def markdown(payload: dict[str, Any]) -> str:
    m, end, s, t = (payload["machine"], payload["machine_at_end"], payload["settings"],
                    payload["targets"])
    kinds = sorted({r["kind"] for rows in payload["rows"].values() for r in rows})
    counts = {k: len({r["question"] for rows in payload["rows"].values() for r in rows
                      if r["kind"] == k}) for k in kinds}
    head = (f"# Self-critic against optillm 0.4.0 ({s['model']})\n\n"
            f"{m['time']}, {m['cpus']} CPUs, vLLM {m.get('vllm')}, "
            f"{'eager' if s['eager'] else 'compiled'}, dtype {s['dtype']}, binding "
            f"{s['binding'] or 'vLLM automatic'} on both engines. Questions answered by every "
            f"arm: {', '.join(f'{v} {k}' for k, v in counts.items())} (budget "
            f"{s['budget_min']} min); max_tokens {s['max_tokens']} (code "
            f"{s['code_max_tokens']}), temperature 1, top_p 1, one request at a time, arms "
            f"rotated per question. Load average (1/5/15 min) at start {m['loadavg']}, at end "
            f"{end['loadavg']}.\n\n")
    table = md_table(["arm", "ok", "median s", "p90 s", "min–max s", "accuracy",
                      *[f"acc {k}" for k in kinds], "pass@N", "completion tok/q",
                      "candidate tok/q", "started/q", "load"],
                     [[r["arm"], f"{r['ok']}/{r['questions']}", r["median_s"], r["p90_s"],
                       "–" if not r["range_s"] else f"{r['range_s'][0]:.3g}–{r['range_s'][1]:.3g}",
                       r["accuracy"], *[r["accuracy_by_kind"].get(k) for k in kinds],
                       r["pass_at_n"], r["completion_tokens_per_question"],
                       r["candidate_tokens_per_question"], r["started_per_question"],
                       "–" if not r["load1_range"] else
                       f"{r['load1_range'][0]:.3g}–{r['load1_range'][1]:.3g}"]
                      for r in payload["summary"]])

    def ratio_rows(items: list[dict[str, Any]], *extra: str) -> list[list[Any]]:
        return [[r.get("n", ""), r["of"], r["over"], r["median"],
                 f"{r['range'][0]}–{r['range'][1]}", r["questions"],
                 *[r.get(e) for e in extra]] for r in items]

    speed = md_table(["N", "peer", "arm", "median ratio", "range", "q", "arm accuracy",
                      "bon accuracy"],
                     ratio_rows(t["speedup_over_bon"], "accuracy", "bon_accuracy"))
    cost = md_table(["", "best-of-8", "plain", "median ratio", "range", "q", "accuracy",
                     "plain accuracy"],
                    ratio_rows(t["best_of_8_over_plain"], "accuracy", "plain_accuracy"))
    adaptive = md_table(["adaptive", "full", "candidate tokens ratio", "q", "accuracy",
                         "full accuracy"],
                        [[r["arm"], r["full"], r["ratio"], r["questions"], r["accuracy"],
                          r["full_accuracy"]] for r in t["adaptive_tokens"]])
    chat = t["plain_chat"]
    same = t["plain_chat_same_tokens"]
    chat_line = ("Plain chat, ours over vLLM's server (same seed, one request at a time): "
                 f"latency ratio {chat['median']} (range {chat['range'][0]}–{chat['range'][1]}, "
                 f"{chat['questions']} q); completion tokens ratio {same['median'] if same else '–'}"
                 ".\n" if chat else "")
    return (head + table + "\n## optillm bon median latency over each arm's (per question)\n\n"
            + speed + "\n## Best-of-8 over plain n=8 (per question)\n\n" + cost
            + "\n## Adaptive (vote, waves of N/2; agreement, or agreement + confidence) "
            "candidate tokens over full\n\n"
            + adaptive + "\n" + chat_line)
