"""From outcomes to a report: one row per strategy and N (and K), as a table and JSON.

Accuracy counts questions whose request succeeded (errors are reported, not scored).
`pass@N` and `majority@N` in a row are over the same candidates the row selected from:
the sampling request's for majority, the self-critic run's own for self-critic. Selection
efficiency is accuracy / pass@N: the share of the oracle's reach that the selection gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from evaluation.stats import CI_METHOD, mean, pass_at_k, ratio, wilson_interval
from evaluation.strategies import MAJORITY_NOT_APPLICABLE, Outcome, Run


@dataclass(frozen=True)
class Row:
    """One strategy at one N (and K): accuracy, its reach, its cost."""

    strategy: str
    run: str
    n: int
    k: int | None
    questions: int
    correct: int
    accuracy: float | None
    ci95: tuple[float, float] | None
    pass_at_n: float | None
    majority_at_n: float | None
    selection_efficiency: float | None
    tokens_per_question: float | None
    seconds_per_question: float | None
    judge_calls_per_question: float | None = None
    entrants_per_question: float | None = None
    """Self-critic: distinct entrants judged (answer merging reports it)."""
    same_candidates_as_sampling: float | None = None
    """Share of questions whose self-critic candidates equal the sampling request's."""
    errors: int = 0
    unavailable: str | None = None
    pass_at_1: float | None = None
    """Unbiased pass@1 from the same N candidates (Chen et al. 2021): mean of c/N."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_rows(runs: Sequence[Run], outcomes: Sequence[Outcome],
               unavailable: dict[str, str]) -> list[Row]:
    """The rows for `runs`: sampling runs give a majority and a pass@N row each."""
    by_run: dict[str, list[Outcome]] = {r.key: [] for r in runs}
    for outcome in outcomes:
        by_run.setdefault(outcome.run, []).append(outcome)
    sampling = {r.n: {o.question_id: o.texts for o in by_run[r.key] if o.error is None}
                for r in runs if r.kind == "sampling"}
    rows: list[Row] = []
    for run in runs:
        mine = by_run[run.key]
        if run.kind == "sampling":
            # Code without behaviour grouping has no vote: majority covers the rest only.
            voted = [o for o in mine if o.error is not None or o.majority_correct is not None]
            no_vote = len(voted) < len(mine) and all(o.error is not None for o in voted)
            majority = _row("majority", run, voted, unavailable, lambda o: o.majority_correct)
            if no_vote:  # code without behaviour grouping: nothing to vote over
                majority = replace(majority, correct=0, accuracy=None, ci95=None,
                                   selection_efficiency=None,
                                   unavailable=MAJORITY_NOT_APPLICABLE)
            rows.append(majority)
            rows.append(_row("pass@N", run, mine, unavailable, lambda o: o.pass_at_n))
        else:
            rows.append(_row(run.name, run, mine, unavailable, lambda o: o.correct,
                             sampling.get(run.n) if run.kind == "self-critic" else None))
    return rows


def _row(strategy: str, run: Run, outcomes: list[Outcome], unavailable: dict[str, str],
         picks: Callable[[Outcome], bool | None], sampled: dict[str, tuple[str, ...]] | None = None) -> Row:
    answered = [o for o in outcomes if o.error is None]
    correct = sum(bool(picks(o)) for o in answered)
    total = len(answered)
    accuracy = correct / total if total else None
    multi = run.kind in ("sampling", "self-critic")
    reach = mean([float(bool(o.pass_at_n)) for o in answered]) if multi else None
    majority = mean([float(o.majority_correct) for o in answered
                     if o.majority_correct is not None]) if multi else None
    unbiased = mean([pass_at_k(len(o.candidates_correct), sum(o.candidates_correct), 1)
                     for o in answered if o.candidates_correct]) if multi else None
    efficiency = ratio(accuracy, reach) if multi and strategy != "pass@N" else None
    calls = [float(o.judge_calls) for o in answered if o.judge_calls is not None]
    same = None
    if sampled is not None:
        paired = [o.texts == sampled[o.question_id] for o in answered if o.question_id in sampled]
        same = mean([float(p) for p in paired])
    return Row(strategy=strategy, run=run.key, n=run.n, k=run.k, questions=total,
               correct=correct, accuracy=accuracy,
               ci95=wilson_interval(correct, total) if total else None,
               pass_at_n=reach, majority_at_n=majority, selection_efficiency=efficiency,
               tokens_per_question=mean([float(o.tokens) for o in answered]),
               seconds_per_question=mean([o.seconds for o in answered]),
               judge_calls_per_question=mean(calls),
               entrants_per_question=mean([float(o.extra["entrants"]) for o in answered
                                           if "entrants" in o.extra]),
               same_candidates_as_sampling=same,
               errors=sum(o.error is not None and not o.skipped for o in outcomes),
               unavailable=unavailable.get(run.key), pass_at_1=unbiased)


COLUMNS = ("strategy", "N", "K", "questions", "accuracy", "95% CI", "pass@1", "pass@N",
           "majority@N", "efficiency", "tokens/q", "s/q", "errors")


def table_cells(row: Row) -> list[str]:
    """One row of the table, formatted."""
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"

    ci = "—" if row.ci95 is None else f"{row.ci95[0]:.1%}–{row.ci95[1]:.1%}"
    if row.unavailable:
        return [row.strategy, str(row.n), _k(row), "—", "unavailable", "—", "—", "—", "—", "—",
                "—", "—", str(row.errors)]
    return [row.strategy, str(row.n), _k(row), str(row.questions), pct(row.accuracy), ci,
            pct(row.pass_at_1), pct(row.pass_at_n), pct(row.majority_at_n),
            "—" if row.selection_efficiency is None else f"{row.selection_efficiency:.2f}",
            "—" if row.tokens_per_question is None else f"{row.tokens_per_question:.0f}",
            "—" if row.seconds_per_question is None else f"{row.seconds_per_question:.2f}",
            str(row.errors)]


def _k(row: Row) -> str:
    return "—" if row.k is None else str(row.k)


def format_table(rows: Sequence[Row], markdown: bool = False) -> str:
    """The rows as an aligned text table (or Markdown), with unavailable reasons below."""
    cells = [list(COLUMNS), *(table_cells(r) for r in rows)]
    if markdown:
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        lines.insert(1, "|" + "---|" * len(COLUMNS))
    else:
        widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
        lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(COLUMNS))).rstrip()
                 for c in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
    notes = {r.run: r.unavailable for r in rows if r.unavailable}
    lines += [f"{run}: unavailable: {reason}" for run, reason in notes.items()]
    return "\n".join(lines)


def report_dict(rows: Sequence[Row], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: settings and context in `meta`, then every row."""
    return {**meta, "ci_method": CI_METHOD,
            "columns": {"accuracy": "share of answered questions whose selection is right",
                        "pass_at_n": "share with at least one right candidate (oracle), over "
                                     "the same candidates the row selected from",
                        "majority_at_n": "majority vote over extracted answers of those "
                                         "candidates (ties: first occurrence)",
                        "selection_efficiency": "accuracy / pass_at_n",
                        "pass_at_1": "unbiased pass@1 from the same N candidates (Chen et "
                                     "al. 2021: 1 - C(N-c, 1)/C(N, 1) = c/N, averaged)",
                        "tokens_per_question": "prompt + completion tokens from usage",
                        "seconds_per_question": "mean request latency (its last attempt)"},
            "rows": [r.to_dict() for r in rows]}


def write_report(out_dir: Path, rows: Sequence[Row], outcomes: Sequence[Outcome],
                 meta: dict[str, Any]) -> dict[str, Path]:
    """report.json, table.md and outcomes.jsonl (one line per question and run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "table": out_dir / "table.md",
             "outcomes": out_dir / "outcomes.jsonl"}
    paths["json"].write_text(json.dumps(report_dict(rows, meta), indent=2) + "\n")
    paths["table"].write_text(format_table(rows, markdown=True) + "\n")
    paths["outcomes"].write_text("".join(json.dumps(asdict(o)) + "\n" for o in outcomes))
    return paths
