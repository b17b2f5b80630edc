"""Two `eval policy` outputs over the same questions, compared question by question.

Each run (greedy, sampling@8, self-critic-fast@8k2, ...) that both outputs hold is paired
on its questions: both accuracies, their difference (B − A) with a paired 95% interval,
the questions only B got right and only A got right, and how many questions saw the very
same candidate texts in both (at the same request seeds, the base model against a judge
adapter export answers identically, so the difference is the judge's alone).

  selfcritic eval compare runs/eval-base runs/eval-trained
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evaluation.stats import paired_difference

OUTCOMES = "outcomes.jsonl"


class CompareError(ValueError):
    """The outputs cannot be compared (missing, unreadable, or no shared questions)."""


@dataclass(frozen=True)
class RunComparison:
    """One run of both outputs, over the questions both answered."""

    run: str
    questions: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    ci95: tuple[float, float]
    only_b: int
    """Questions B got right and A wrong."""
    only_a: int
    same_candidates: int
    """Questions whose candidate texts were identical in both."""


def load_outcomes(folder: str | Path) -> dict[tuple[str, str], dict[str, Any]]:
    """An `eval policy` output's outcomes by (run, question id); errored rows left out."""
    path = Path(folder) / OUTCOMES
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise CompareError(f"{path}: {error.strerror or error} (an `eval policy` --output "
                           "folder holds it)") from error
    outcomes = {}
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
            key = (str(row["run"]), str(row["question_id"]))
        except (ValueError, KeyError, TypeError) as error:
            raise CompareError(f"{path}:{number}: not an outcome row ({error!r})") from error
        if not row.get("error") and not row.get("skipped"):
            outcomes[key] = row
    return outcomes


def compare(a: dict[tuple[str, str], dict[str, Any]],
            b: dict[tuple[str, str], dict[str, Any]]) -> list[RunComparison]:
    """Every run both hold, paired over their shared questions, in A's order."""
    runs = list(dict.fromkeys(run for run, _ in a))
    comparisons = []
    for run in runs:
        keys = [k for k in a if k[0] == run and k in b]
        if not keys:
            continue
        right_a = [bool(a[k].get("correct")) for k in keys]
        right_b = [bool(b[k].get("correct")) for k in keys]
        difference, low, high = paired_difference(
            [float(y) - float(x) for x, y in zip(right_a, right_b, strict=True)])
        comparisons.append(RunComparison(
            run=run, questions=len(keys), accuracy_a=sum(right_a) / len(keys),
            accuracy_b=sum(right_b) / len(keys), difference=difference, ci95=(low, high),
            only_b=sum(y and not x for x, y in zip(right_a, right_b, strict=True)),
            only_a=sum(x and not y for x, y in zip(right_a, right_b, strict=True)),
            same_candidates=sum(a[k].get("texts") == b[k].get("texts") for k in keys)))
    if not comparisons:
        raise CompareError("the two outputs share no run and question")
    return comparisons


def markdown(comparisons: list[RunComparison], name_a: str, name_b: str) -> str:
    """The comparison as a Markdown table."""
    lines = [f"| run | questions | A: {name_a} | B: {name_b} | B − A [95% CI] | only B right "
             "| only A right | same candidates |", "|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c.run} | {c.questions} | {c.accuracy_a:.1%} | {c.accuracy_b:.1%} | "
                     f"{c.difference:+.1%} [{c.ci95[0]:+.1%}, {c.ci95[1]:+.1%}] | {c.only_b} | "
                     f"{c.only_a} | {c.same_candidates} |")
    return "\n".join(lines)


def as_json(comparisons: list[RunComparison], a: str | Path, b: str | Path) -> str:
    return json.dumps({"a": str(a), "b": str(b),
                       "runs": [asdict(c) for c in comparisons]}, indent=2) + "\n"
