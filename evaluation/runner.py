"""Runs every (question, run) request against one endpoint with bounded concurrency.

Requests go out question by question, so the strategies of a question run side by side
and share the machine alike. A strategy the endpoint refuses before it ever succeeded
(a 4xx, or a reply without what it needs, as from a peer without self-critic) is marked
unavailable with the endpoint's reason and its remaining requests are not sent; the
other strategies carry on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from evaluation.candidate_recorder import CandidateRecorder
from evaluation.client import ChatClient, EndpointError
from evaluation.dataset import Question
from evaluation.strategies import (
    CodeScoring,
    Outcome,
    RequestSettings,
    Run,
    Unsupported,
    request_body,
    score_reply,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunLog:
    """Every outcome, the runs found unavailable (key → reason) and the wall time."""

    outcomes: tuple[Outcome, ...]
    unavailable: dict[str, str]
    wall_s: float


class Runner:
    """Sends the requests of `runs` for each question through `client`."""

    def __init__(self, client: ChatClient, settings: RequestSettings, concurrency: int,
                 progress: bool | None = None, code: CodeScoring | None = None,
                 recorder: CandidateRecorder | None = None) -> None:
        self.client = client
        self.code = code
        """Scores code questions; their programs run on its pool, off this event loop."""
        self.recorder = recorder
        """Keeps the greedy and sampling replies as a candidates file (--save-candidates)."""
        self.settings = settings
        self.concurrency = concurrency
        self.progress = progress
        self.unavailable: dict[str, str] = {}
        self._succeeded: set[str] = set()

    async def run(self, questions: Sequence[Question], runs: Sequence[Run]) -> RunLog:
        jobs = [(q, r) for q in questions for r in runs]
        outcomes: list[Outcome | None] = [None] * len(jobs)
        queue = iter(enumerate(jobs))
        start = time.monotonic()
        # disable=None: a bar on a terminal, silence in logs and CI.
        with tqdm(total=len(jobs), unit="req", desc="eval policy",
                  disable=None if self.progress is None else not self.progress) as bar:

            async def worker() -> None:
                for index, (question, run) in queue:
                    outcomes[index] = await self.run_one(question, run)
                    bar.update()

            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(jobs)))))
        done = tuple(o for o in outcomes if o is not None)
        return RunLog(done, dict(self.unavailable), time.monotonic() - start)

    async def run_one(self, question: Question, run: Run) -> Outcome:
        """One request, scored; failures become outcomes with `error` set."""
        base = {"question_id": question.id, "run": run.key, "category": question.category}
        if run.key in self.unavailable:
            return Outcome(**base, error=self.unavailable[run.key], skipped=True)
        try:
            body = request_body(run, question, self.settings)
            if self.recorder is not None:
                body = self.recorder.request(run, body)
            reply = await self.client.chat(body)
            if self.recorder is not None:
                self.recorder.record(run, question, reply)
            if question.code is not None and self.code is not None:
                outcome = await self.code.grader.run_async(score_reply, run, question, reply,
                                                           self.code)
            else:
                outcome = score_reply(run, question, reply)
        except EndpointError as exc:
            if exc.refused and run.key not in self._succeeded:
                self._mark_unavailable(run, str(exc))
            else:
                logger.warning("%s on %s failed: %s", run.key, question.id, exc)
            return Outcome(**base, error=str(exc))
        except Unsupported as exc:
            self._mark_unavailable(run, str(exc))
            return Outcome(**base, error=str(exc))
        self._succeeded.add(run.key)
        return outcome

    def _mark_unavailable(self, run: Run, reason: str) -> None:
        if run.key not in self.unavailable:
            logger.error("%s is unavailable at this endpoint; skipping it: %s", run.key, reason)
            self.unavailable[run.key] = reason
