"""Verifiable questions from JSONL: a `question`, its `answer` and how to grade it.

The grader comes from each row's `grader` field or from one default for the file; rows may
also carry `answer_format` and `answer_pattern` (how the answer is read, see
`critic_loop.answers`). Other field names (GSM8K's, MATH's) map onto these with
`Fields`, and a reference solution can be reduced to its final answer by the same
extractor. Rows with tests (`test`, or MBPP's `test_list`) are code problems, graded by
running them (see evaluation/code_tasks.py); `humaneval` names the installed HumanEval.
A bad row is an error naming the file, the line and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from critic_loop.answers import CODE_GRADER, FORMATS, GRADER_NAMES, compile_pattern, extract_answer
from critic_loop.code.tests_runner import CodeTask
from evaluation import code_tasks

VOTE_FORMATS = {"choice": "choice"}
"""The answer format majority voting uses per grader when a row names none ('auto' else)."""


class DatasetError(ValueError):
    """A file that cannot be read, or a row that is not a valid question."""


@dataclass(frozen=True)
class Question:
    """One question with its reference answer and how a response is graded."""

    id: str
    question: str
    answer: str
    grader: str = "numeric"
    category: str | None = None
    answer_format: str | None = None
    """How an answer is read for voting and answer-aware merging; None: by grader."""
    answer_pattern: str | None = None
    """A regular expression that reads the answer instead (last match, group 1 if any)."""
    code: CodeTask | None = None
    """A code problem (grader 'code'): its prompt, tests and entry point; `answer` then
    holds the tests."""

    @property
    def vote_format(self) -> str:
        """The `critic_loop.answers` format that votes and merges read answers with."""
        return self.answer_format or VOTE_FORMATS.get(self.grader, "auto")


@dataclass(frozen=True)
class Fields:
    """Which JSON fields hold what, and how to read the reference answer."""

    question: str = "question"
    answer: str = "answer"
    grader: str | None = None
    """The grader of rows without a `grader` field (None: such rows are errors)."""
    answer_format: str | None = None
    answer_pattern: str | None = None
    reference_format: str | None = None
    """Extract the reference answer from the answer field with this format ('boxed' for
    MATH solutions), or with `reference_pattern`; None: the field is the answer."""
    reference_pattern: str | None = None


def load_questions(path: str | Path, fields: Fields | None = None,
                   limit: int | None = None) -> list[Question]:
    """Every question in the JSONL file `path` (the first `limit` when given)."""
    path = Path(path)
    fields = fields or Fields()
    _check_defaults(path, fields)
    try:
        if str(path) == code_tasks.HUMANEVAL and not path.exists():
            lines = [json.dumps(row) for row in code_tasks.humaneval_rows()]
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
    except code_tasks.PackageMissing as exc:
        raise DatasetError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    questions: list[Question] = []
    ids: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if limit is not None and len(questions) >= limit:
            break
        question = _parse(path, number, line, fields)
        if question.id in ids:
            raise DatasetError(f"{path}:{number}: field 'id': {question.id!r} appears twice")
        ids.add(question.id)
        questions.append(question)
    if not questions:
        raise DatasetError(f"{path}: no questions")
    return questions


def _check_defaults(path: Path, fields: Fields) -> None:
    checks = (("--grader", fields.grader, _check_grader),
              ("--answer-format", fields.answer_format, _check_format),
              ("--answer-pattern", fields.answer_pattern, compile_pattern),
              ("--reference-format", fields.reference_format, _check_format),
              ("--reference-pattern", fields.reference_pattern, compile_pattern))
    for flag, value, check in checks:
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                raise DatasetError(f"{path}: {flag}: {exc}") from None


def _parse(path: Path, number: int, line: str, fields: Fields) -> Question:
    where = f"{path}:{number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not valid JSON: {exc.msg}") from None
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: a row must be a JSON object, got {type(row).__name__}")

    if code_tasks.is_code_row(row) and (row.get("grader") or fields.grader or CODE_GRADER) \
            == CODE_GRADER:
        return _code_question(path, number, row)

    def optional(name: str) -> str | None:
        value = row.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise DatasetError(f"{where}: field {name!r} must be a string or a number, "
                               f"got {type(value).__name__}")
        if isinstance(value, str) and not value.strip():
            raise DatasetError(f"{where}: field {name!r} is empty")
        return str(value)

    def required(name: str) -> str:
        value = optional(name)
        if value is None:
            raise DatasetError(f"{where}: field {name!r} is missing")
        return value

    question = required(fields.question)
    answer = _reference(where, fields, required(fields.answer))
    grader = optional("grader") or fields.grader
    if grader is None:
        raise DatasetError(f"{where}: field 'grader' is missing and no default grader was "
                           f"given (--grader); allowed: {', '.join(GRADER_NAMES)}")
    answer_format = optional("answer_format") or fields.answer_format
    pattern = optional("answer_pattern") or fields.answer_pattern
    for name, value, check in (("grader", grader, _check_grader),
                               ("answer_format", answer_format, _check_format),
                               ("answer_pattern", pattern, compile_pattern)):
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                raise DatasetError(f"{where}: field {name!r}: {exc}") from None
    if grader == CODE_GRADER:
        raise DatasetError(f"{where}: the 'code' grader needs the row's tests: field 'test' "
                           "(HumanEval) or 'test_list' (MBPP)")
    if grader == "regex" and pattern is None:
        raise DatasetError(f"{where}: field 'answer_pattern' is missing: the 'regex' grader "
                           "needs one (or --answer-pattern)")
    return Question(id=optional("id") or f"{path.stem}-{number}", question=question,
                    answer=answer, grader=grader, category=optional("category"),
                    answer_format=answer_format, answer_pattern=pattern)


def _code_question(path: Path, number: int, row: dict) -> Question:
    """A code row: HumanEval's prompt/test/entry_point, or MBPP's text/test_list."""
    try:
        task = code_tasks.code_task(row)
    except code_tasks.CodeRowError as exc:
        raise DatasetError(f"{path}:{number}: {exc}") from None
    category = row.get("category")
    return Question(id=code_tasks.row_id(row, f"{path.stem}-{number}"),
                    question=code_tasks.code_question_text(row), answer=task.tests,
                    grader=CODE_GRADER, category=category if isinstance(category, str) else None,
                    code=task)


def _reference(where: str, fields: Fields, answer: str) -> str:
    if fields.reference_format is None and fields.reference_pattern is None:
        return answer
    found = extract_answer(answer, fields.reference_format or "auto", fields.reference_pattern)
    if found is None:
        raise DatasetError(f"{where}: field {fields.answer!r}: no final answer found by "
                           f"{fields.reference_pattern or fields.reference_format!r}")
    return found


def _check_grader(name: str) -> None:
    if name not in GRADER_NAMES:
        raise ValueError(f"unknown grader {name!r}; allowed: {', '.join(GRADER_NAMES)}")


def _check_format(name: str) -> None:
    if name not in FORMATS:
        raise ValueError(f"unknown answer format {name!r}; allowed: {', '.join(FORMATS)}")

