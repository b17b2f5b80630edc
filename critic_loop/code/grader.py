"""The `code` grader: an answer's program against its task's tests, in a bounded worker pool.

Grading runs processes and blocks for up to the wall limit, so it never runs on an event
loop: async callers await `grade_async`, which hands the work to this grader's threads,
and the sandbox bounds how many programs run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from critic_loop.code.behaviour import Behaviour, behaviours, vote_keys
from critic_loop.code.sandbox import Sandbox
from critic_loop.code.tests_runner import CodeTask, TestResult, grade_answer

T = TypeVar("T")


class CodeGrader:
    """Grades code answers with `sandbox` on `workers` threads (default: its slots)."""

    def __init__(self, sandbox: Sandbox, workers: int | None = None) -> None:
        self.sandbox = sandbox
        self.workers = workers or sandbox.max_parallel
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="code-grader")

    def __enter__(self) -> CodeGrader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def grade(self, answer: str, task: CodeTask) -> TestResult:
        """Blocking: grade one answer in the calling thread."""
        return grade_answer(self.sandbox, answer, task)

    def grade_many(self, items: Iterable[tuple[str, CodeTask]]) -> Iterator[TestResult]:
        """Blocking: grade (answer, task) pairs on the pool, results in input order."""
        return self._pool.map(lambda item: self.grade(*item), items)

    def behaviours(self, prompt: str | None, answers: Sequence[str], entry_point: str | None,
                   examples_text: str | None = None) -> list[Behaviour]:
        """Blocking: `critic_loop.code.behaviour.behaviours` with this grader's sandbox."""
        return behaviours(self.sandbox, prompt, answers, entry_point,
                          examples_text=examples_text)

    def vote_keys(self, prompt: str | None, answers: Sequence[str], entry_point: str | None,
                  examples_text: str | None = None) -> tuple[str | None, ...]:
        """Blocking: each answer's behaviour group as a vote key (`behaviour.vote_keys`:
        None for one that contradicts more stated outputs than the best). The grouping
        `eval policy --exec-grouping` and the server's `--exec-grouping` share."""
        return vote_keys(self.behaviours(prompt, answers, entry_point, examples_text))

    async def grade_async(self, answer: str, task: CodeTask) -> TestResult:
        """Grade one answer on the pool, without blocking the event loop."""
        return await self.run_async(self.grade, answer, task)

    async def run_async(self, function: Callable[..., T], *args: object) -> T:
        """Run any blocking grading work (`function(*args)`) on the pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
