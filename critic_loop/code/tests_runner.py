"""Runs a code problem's tests against one program in the sandbox: passed, failed or timed out.

The program is executed in a namespace of its own (`__name__` is not "__main__", as in the
HumanEval harness, so an answer's example block does not run), then the tests in the same
namespace: HumanEval's `check(candidate)` called on the entry point, or MBPP's asserts.
"""

from __future__ import annotations

from dataclasses import dataclass

from critic_loop.code.extract import program_for
from critic_loop.code.sandbox import Execution, Limits, Sandbox

_SCRIPT = """\
namespace = {{"__name__": "solution"}}
exec(compile({program!r}, "solution.py", "exec"), namespace)
exec(compile({tests!r}, "tests.py", "exec"), namespace)
"""
_RESULT_CHARS = 200


@dataclass(frozen=True)
class CodeTask:
    """A code problem: the prompt the answer completes, its tests, the function's name."""

    tests: str
    """HumanEval's `test` (defines `check(candidate)`) or assert statements (MBPP)."""
    entry_point: str | None = None
    prompt: str | None = None
    """The code the answer completes (HumanEval); None for a problem stated in prose."""

    def __post_init__(self) -> None:
        if not self.tests.strip():
            raise ValueError("a code task needs tests")

    @property
    def test_script(self) -> str:
        """The tests as they run: HumanEval's `check` is called on the entry point."""
        if self.entry_point and "def check(" in self.tests:
            return f"{self.tests}\ncheck({self.entry_point})\n"
        return self.tests


@dataclass(frozen=True)
class TestResult:
    """A graded program: `result` is 'passed', 'failed: <short reason>' or 'timed out'."""

    __test__ = False  # not a pytest test class

    passed: bool
    result: str
    program: str
    execution: Execution | None = None


def run_tests(sandbox: Sandbox, program: str, task: CodeTask,
              limits: Limits | None = None) -> TestResult:
    """Run `task`'s tests against `program` (a whole script) in `sandbox`."""
    script = _SCRIPT.format(program=program, tests=task.test_script)
    execution = sandbox.run(script, limits)
    if execution.status == "passed":
        result = "passed"
    elif execution.status == "timed_out":
        result = "timed out"
    else:
        result = f"failed: {execution.reason or 'exit status ' + str(execution.exit_code)}"
    return TestResult(execution.passed, result[:_RESULT_CHARS], program, execution)


def grade_answer(sandbox: Sandbox, answer: str, task: CodeTask,
                 limits: Limits | None = None) -> TestResult:
    """Take the program out of a model's `answer` and run `task`'s tests on it."""
    program = program_for(answer, task.prompt, task.entry_point)
    if not program.strip():
        return TestResult(False, "failed: no code in the answer", program)
    return run_tests(sandbox, program, task, limits)
