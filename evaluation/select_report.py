"""`eval select`'s figures: per strategy, paired on the same pools, as JSON and a table.

Every strategy selected from the same N candidates of each question, so pass@N (the
oracle), greedy accuracy and mean sample accuracy (unbiased pass@1) are the pool's and are
shared by all rows; a row adds its accuracy (Wilson 95% interval), its selection efficiency
(accuracy / pass@N), its wins and losses against greedy on the same questions, its judge's
cost, and two readings of its judge: order agreement on matches whose sides give different
answers (the server-side proxy for p_comp), and p_comp itself on right-vs-wrong matches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evaluation.select_run import QuestionPicks
from evaluation.stats import CI_METHOD, mean, ratio, wilson_interval


@dataclass(frozen=True)
class PoolFigures:
    """What the candidates allow, whatever selects among them."""

    questions: int
    pass_at_n: float | None
    greedy_accuracy: float | None
    greedy_questions: int
    mean_sample_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StrategyRow:
    """One strategy over every question."""

    strategy: str
    questions: int
    correct: int
    accuracy: float | None
    ci95: tuple[float, float] | None
    selection_efficiency: float | None
    wins_vs_greedy: int
    """Questions this strategy got right and greedy wrong."""
    losses_vs_greedy: int
    judge_calls_per_question: float | None
    judge_tokens_per_question: float | None
    invalid_votes: int
    order_agreement: float | None
    differing_matches: int
    p_comp: float | None
    right_wrong_matches: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pool_figures(results: Sequence[QuestionPicks]) -> PoolFigures:
    greedy = [r.greedy_correct for r in results if r.greedy_correct is not None]
    return PoolFigures(
        questions=len(results), pass_at_n=mean([float(r.pass_at_n) for r in results]),
        greedy_accuracy=mean([float(g) for g in greedy]), greedy_questions=len(greedy),
        mean_sample_accuracy=mean([r.sample_accuracy for r in results]))


def strategy_rows(results: Sequence[QuestionPicks], names: Sequence[str]) -> list[StrategyRow]:
    """One row per strategy in `names`, in that order."""
    pool = pool_figures(results)
    rows = []
    for name in names:
        picks = [(r, p) for r in results for p in r.picks if p.strategy == name]
        total = len(picks)
        correct = sum(p.correct for _, p in picks)
        accuracy = correct / total if total else None
        differing = sum(p.differing_matches for _, p in picks)
        right_wrong = sum(p.right_wrong_matches for _, p in picks)
        rows.append(StrategyRow(
            strategy=name, questions=total, correct=correct, accuracy=accuracy,
            ci95=wilson_interval(correct, total) if total else None,
            selection_efficiency=ratio(accuracy, pool.pass_at_n),
            wins_vs_greedy=sum(1 for r, p in picks if p.correct and r.greedy_correct is False),
            losses_vs_greedy=sum(1 for r, p in picks if not p.correct and r.greedy_correct),
            judge_calls_per_question=mean([float(p.judge_calls) for _, p in picks]),
            judge_tokens_per_question=mean([float(p.judge_tokens) for _, p in picks]),
            invalid_votes=sum(p.invalid_votes for _, p in picks),
            order_agreement=ratio(sum(p.agreeing_matches for _, p in picks), differing),
            differing_matches=differing,
            p_comp=ratio(sum(p.right_won for _, p in picks), right_wrong),
            right_wrong_matches=right_wrong))
    return rows


def best_row(rows: Sequence[StrategyRow]) -> StrategyRow:
    """The most accurate strategy; ties go to the fewer judge calls, then the order given.

    >>> a = StrategyRow("a", 4, 3, .75, None, None, 0, 0, 3.0, 9.0, 0, None, 0, None, 0)
    >>> b = StrategyRow("b", 4, 3, .75, None, None, 0, 0, 0.0, 0.0, 0, None, 0, None, 0)
    >>> best_row([a, b]).strategy
    'b'
    """
    scored = [r for r in rows if r.accuracy is not None]
    if not scored:
        raise ValueError("no strategy was scored")
    return min(scored, key=lambda r: (-r.correct / r.questions,
                                      r.judge_calls_per_question or 0.0, rows.index(r)))


def write_select_report(out: Path, results: Sequence[QuestionPicks], rows: Sequence[StrategyRow],
                        meta: dict[str, Any]) -> dict[str, Path]:
    """select.json, select.md and picks.jsonl under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    pool = pool_figures(results)
    paths = {"json": out / "select.json", "table": out / "select.md",
             "picks": out / "picks.jsonl"}
    report = {"meta": {**meta, "ci": CI_METHOD}, "pool": pool.to_dict(),
              "strategies": [r.to_dict() for r in rows]}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["table"].write_text(format_select_table(pool, rows, meta) + "\n")
    with paths["picks"].open("w") as f:
        for result in results:
            f.write(json.dumps(result.to_dict()) + "\n")
    return paths


def format_select_table(pool: PoolFigures, rows: Sequence[StrategyRow],
                        meta: dict[str, Any] | None = None) -> str:
    """A markdown table: the pool's figures above, one line per strategy."""
    n = (meta or {}).get("settings", {}).get("n", "N")
    lines = [f"{pool.questions} questions, N={n}: pass@{n} {_pct(pool.pass_at_n)}, "
             f"greedy {_pct(pool.greedy_accuracy)} ({pool.greedy_questions} questions), "
             f"mean sample {_pct(pool.mean_sample_accuracy)}", "",
             "| strategy | accuracy | 95% CI | efficiency | vs greedy (+/−) | judge calls/q "
             "| judge tokens/q | invalid votes | order agreement | p_comp |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = f"{r.ci95[0]:.1%}–{r.ci95[1]:.1%}" if r.ci95 else "–"
        lines.append(
            f"| {r.strategy} | {_pct(r.accuracy)} | {ci} | {_num(r.selection_efficiency, 2)} "
            f"| +{r.wins_vs_greedy}/−{r.losses_vs_greedy} "
            f"| {_num(r.judge_calls_per_question, 1)} | {_num(r.judge_tokens_per_question, 0)} "
            f"| {r.invalid_votes} | {_share(r.order_agreement, r.differing_matches)} "
            f"| {_share(r.p_comp, r.right_wrong_matches)} |")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _share(value: float | None, of: int) -> str:
    return "–" if value is None else f"{value:.2f} (of {of})"

