"""Real HumanEval problems graded in the sandbox: the canonical solution passes, a mutant fails."""

from __future__ import annotations

import pytest

from critic_loop.code.sandbox import Limits, Sandbox
from critic_loop.code.tests_runner import CodeTask, grade_answer, run_tests
from tests.support.humaneval_rows import humaneval


def _task(row: dict[str, str]) -> CodeTask:
    return CodeTask(tests=row["test"], entry_point=row["entry_point"], prompt=row["prompt"])


@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/2", "HumanEval/53", "HumanEval/163"])
def test_the_canonical_solution_passes(sandbox: Sandbox, task_id: str) -> None:
    row = humaneval(task_id)
    answer = f"```python\n{row['prompt']}{row['canonical_solution']}```"
    result = grade_answer(sandbox, answer, _task(row))
    assert result.passed and result.result == "passed", result.execution


def test_the_canonical_body_alone_passes(sandbox: Sandbox) -> None:
    row = humaneval("HumanEval/0")
    result = grade_answer(sandbox, row["canonical_solution"], _task(row))
    assert result.passed, result.execution


def test_a_mutated_solution_fails_with_the_assertion(sandbox: Sandbox) -> None:
    row = humaneval("HumanEval/0")
    wrong = row["canonical_solution"].replace("return True", "return False")
    assert wrong != row["canonical_solution"]
    result = grade_answer(sandbox, wrong, _task(row))
    assert not result.passed and result.result.startswith("failed: AssertionError")


def test_a_program_that_does_not_parse_fails_with_the_syntax_error(sandbox: Sandbox) -> None:
    row = humaneval("HumanEval/2")
    result = grade_answer(sandbox, "```python\ndef truncate_number(x:\n    return x\n```", _task(row))
    assert result.result.startswith("failed: SyntaxError")


def test_a_slow_solution_times_out(sandbox: Sandbox) -> None:
    row = humaneval("HumanEval/2")
    result = run_tests(sandbox, "def truncate_number(x):\n    while True:\n        pass\n",
                       _task(row), Limits(wall_s=2.0, cpu_s=30))
    assert result.result == "timed out" and not result.passed


def test_mbpp_asserts_and_an_example_block_that_must_not_run(sandbox: Sandbox) -> None:
    task = CodeTask(tests="assert add(1, 2) == 3\nassert add(-1, 1) == 0\n")
    answer = ("```python\ndef add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n"
              "    print(add(input(), 1))\n```")
    assert grade_answer(sandbox, answer, task).result == "passed"
    wrong = grade_answer(sandbox, "```python\ndef add(a, b):\n    return a - b\n```", task)
    assert wrong.result == "failed: AssertionError"


def test_a_task_needs_tests() -> None:
    with pytest.raises(ValueError, match="tests"):
        CodeTask(tests="  ")
