"""`eval policy --save-candidates`: its greedy and sampling replies kept as a candidates file.

The greedy request and the n=N sampling request of each question are sent with
`logprobs` and `top_logprobs` (only when saving), and their choices written in the format
`evaluation.candidates` reads, so `eval select` can later judge every strategy on exactly
these candidates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.candidates import candidate_row, record_of_choice
from evaluation.client import ChatReply
from evaluation.dataset import Question
from evaluation.strategies import Run

TOP_LOGPROBS = 5
"""Alternatives kept per token: enough for DeepConf's confidence on short answers, and
what OpenAI's API allows at most (20) comfortably below."""


class CandidateRecorder:
    """Collects the greedy and the n=`n` sampling replies of each question."""

    def __init__(self, path: Path, n: int, top_logprobs: int = TOP_LOGPROBS) -> None:
        self.path = path
        self.n = n
        self.top_logprobs = top_logprobs
        self._greedy: dict[str, dict[str, Any]] = {}
        self._samples: dict[str, list[dict[str, Any]]] = {}

    def wants(self, run: Run) -> bool:
        return run.kind == "greedy" or (run.kind == "sampling" and run.n == self.n)

    def request(self, run: Run, body: dict[str, Any]) -> dict[str, Any]:
        """`body`, asking for logprobs when its reply is kept."""
        if not self.wants(run):
            return body
        return {**body, "logprobs": True, "top_logprobs": self.top_logprobs}

    def record(self, run: Run, question: Question, reply: ChatReply) -> None:
        if not self.wants(run):
            return
        choices = sorted(reply.body.get("choices") or [], key=lambda c: c.get("index", 0))
        records = [record_of_choice(c) for c in choices]
        if run.kind == "greedy" and records:
            self._greedy[question.id] = records[0]
        elif run.kind == "sampling":
            self._samples[question.id] = records

    def write(self, questions: Sequence[Question]) -> Path | None:
        """One row per question whose samples came back, in question order; None (and no
        file) when none did."""
        rows = [candidate_row(q.id, self._greedy.get(q.id), self._samples[q.id])
                for q in questions if q.id in self._samples]
        if not rows:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return self.path
