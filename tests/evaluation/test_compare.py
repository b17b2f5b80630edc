"""`eval compare`: two eval policy outputs paired question by question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.cli import run_compare
from evaluation.compare import CompareError, compare, load_outcomes


def _output(folder: Path, rows: list[tuple[str, str, bool, list[str]]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "outcomes.jsonl").write_text("".join(
        json.dumps({"run": run, "question_id": qid, "correct": correct, "texts": texts,
                    "error": None, "skipped": False}) + "\n"
        for run, qid, correct, texts in rows))
    return folder


def test_runs_are_paired_on_shared_questions(tmp_path: Path) -> None:
    a = _output(tmp_path / "a", [("greedy", "q1", True, ["x"]), ("greedy", "q2", False, ["y"]),
                                 ("sc", "q1", False, ["x", "z"]), ("sc", "q2", False, ["y"]),
                                 ("sc", "q3", True, ["w"])])  # q3: only in A, left out
    b = _output(tmp_path / "b", [("greedy", "q1", True, ["x"]), ("greedy", "q2", False, ["y"]),
                                 ("sc", "q1", True, ["x", "z"]), ("sc", "q2", False, ["v"])])
    greedy, sc = compare(load_outcomes(a), load_outcomes(b))
    assert (greedy.run, greedy.difference, greedy.ci95, greedy.same_candidates) == (
        "greedy", 0.0, (0.0, 0.0), 2)
    assert (sc.questions, sc.accuracy_a, sc.accuracy_b, sc.only_b, sc.only_a) == (
        2, 0.0, 0.5, 1, 0)
    assert sc.difference == 0.5 and sc.ci95[0] < 0.5 < sc.ci95[1]
    assert sc.same_candidates == 1


def test_errored_rows_are_not_compared(tmp_path: Path) -> None:
    a = _output(tmp_path / "a", [("greedy", "q1", True, ["x"])])
    b = tmp_path / "b"
    b.mkdir()
    (b / "outcomes.jsonl").write_text(json.dumps({"run": "greedy", "question_id": "q1",
                                                  "correct": False, "error": "timeout"}) + "\n")
    with pytest.raises(CompareError, match="share no run"):
        compare(load_outcomes(a), load_outcomes(b))


def test_the_command_writes_both_files_and_fails_clearly(tmp_path: Path, capsys) -> None:
    import argparse

    a = _output(tmp_path / "a", [("greedy", "q1", False, ["x"])])
    b = _output(tmp_path / "b", [("greedy", "q1", True, ["x"])])
    out = tmp_path / "cmp"
    assert run_compare(argparse.Namespace(a=a, b=b, output=out)) == 0
    assert "| greedy | 1 | 0.0% | 100.0% | +100.0%" in capsys.readouterr().out
    assert json.loads((out / "compare.json").read_text())["runs"][0]["only_b"] == 1
    assert run_compare(argparse.Namespace(a=tmp_path / "none", b=b, output=None)) == 1
