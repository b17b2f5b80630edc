"""Loading question files: graders per row or per file, field mapping, reference answers
read by the shared extractor, and errors that name the file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.dataset import DatasetError, Fields, load_questions


def write(tmp_path: Path, rows: list, name: str = "q.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_rows_with_their_own_graders(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"id": "a", "question": "2+2?", "answer": 4, "grader": "numeric"},
        "",
        {"question": "Pick", "answer": "B", "grader": "choice", "category": "mc"},
        {"question": "Say", "answer": "7", "grader": "regex", "answer_pattern": r"is (\d+)"}])
    first, second, third = load_questions(path)
    assert (first.id, first.answer, first.vote_format) == ("a", "4", "auto")
    assert (second.id, second.vote_format, second.category) == ("q-3", "choice", "mc")
    assert third.answer_pattern == r"is (\d+)"
    assert len(load_questions(path, limit=2)) == 2


def test_file_default_grader_and_format(tmp_path: Path) -> None:
    path = write(tmp_path, [{"question": "x", "answer": "1"}])
    with pytest.raises(DatasetError, match=r"q.jsonl:1: field 'grader' is missing"):
        load_questions(path)
    (question,) = load_questions(path, Fields(grader="exact", answer_format="boxed"))
    assert question.grader == "exact" and question.vote_format == "boxed"


def test_gsm8k_and_math_style_files(tmp_path: Path) -> None:
    gsm8k = write(tmp_path, [{"question": "Janet has...", "answer": "So 3 + 4 = 7.\n#### 1,234"}],
                  "gsm8k.jsonl")
    (question,) = load_questions(gsm8k, Fields(grader="numeric", reference_pattern=r"####\s*(.+)"))
    assert question.answer == "1234"
    math = write(tmp_path, [{"problem": "Find x.", "solution": r"So $x = \boxed{\frac{1}{2}}$."}],
                 "math.jsonl")
    (question,) = load_questions(math, Fields(question="problem", answer="solution",
                                              grader="numeric", reference_format="boxed"))
    assert (question.question, question.answer) == ("Find x.", "0.5")


@pytest.mark.parametrize(("row", "message"), [
    ("{not json", r"bad.jsonl:2: not valid JSON"),
    ("[1, 2]", r"bad.jsonl:2: a row must be a JSON object"),
    ({"answer": "1", "grader": "numeric"}, r"bad.jsonl:2: field 'question' is missing"),
    ({"question": "q", "grader": "numeric"}, r"bad.jsonl:2: field 'answer' is missing"),
    ({"question": " ", "answer": "1", "grader": "numeric"}, r"field 'question' is empty"),
    ({"question": "q", "answer": [1], "grader": "numeric"}, r"field 'answer' must be a string"),
    ({"question": "q", "answer": "1", "grader": "fuzzy"}, r"field 'grader': unknown grader"),
    ({"question": "q", "answer": "1", "grader": "numeric", "answer_format": "roman"},
     r"field 'answer_format': unknown answer format 'roman'; allowed: auto"),
    ({"question": "q", "answer": "1", "grader": "regex"}, r"field 'answer_pattern' is missing"),
    ({"question": "q", "answer": "1", "grader": "regex", "answer_pattern": "("},
     r"field 'answer_pattern': answer_pattern is not a valid regular expression"),
    ({"id": "a", "question": "q", "answer": "1", "grader": "numeric"},
     r"bad.jsonl:2: field 'id': 'a' appears twice"),
])
def test_bad_rows_name_file_line_and_field(tmp_path: Path, row: object, message: str) -> None:
    path = write(tmp_path, [{"id": "a", "question": "ok", "answer": "1", "grader": "numeric"},
                            row], "bad.jsonl")
    with pytest.raises(DatasetError, match=message):
        load_questions(path)


def test_bad_files_and_defaults(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="no questions"):
        load_questions(write(tmp_path, [""]))
    path = write(tmp_path, [{"question": "q", "answer": "1"}])
    with pytest.raises(DatasetError, match="--grader: unknown grader"):
        load_questions(path, Fields(grader="nope"))
    with pytest.raises(DatasetError, match=r"q.jsonl:1: field 'answer': no final answer"):
        load_questions(path, Fields(grader="numeric", reference_format="boxed"))
