"""The policy curve: greedy answer accuracy on held-out questions while the critic trains.

Critic training must not make the model a worse policy (the paper says it makes it a
better one). Every `every` optimiser steps (and before the first, and at the end) the
training model answers a small held-out question set greedily, as `eval policy`'s greedy
run asks it (the question as one user turn, through the chat template), graded by
`critic_loop.answers`. The figures land in `metrics.jsonl` as `policy/...` beside the
judge's `eval/...`, so `selfcritic eval curve` plots both.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from critic_loop.answers import CODE_GRADER, grade
from evaluation.dataset import Question
from evaluation.stats import wilson_interval
from trainer.generate import LocalGenerator
from trainer.step_hooks import AtSteps

logger = logging.getLogger(__name__)


class PolicyCurve(AtSteps):
    """Logs greedy accuracy on `questions` at step 0, every `every` steps and at the end."""

    def __init__(self, questions: Sequence[Question], tokenizer: Any, metrics_path: Path,
                 every: int, *, max_new_tokens: int = 48, batch_size: int = 32) -> None:
        code = [q.id for q in questions if q.grader == CODE_GRADER]
        if code:
            raise ValueError(f"the policy curve grades text answers; {code[0]} is a code "
                             "question (measure code after training with `eval policy`)")
        if not questions or every < 1:
            raise ValueError("the policy curve needs questions and every >= 1")
        self.questions = list(questions)
        self.tokenizer = tokenizer
        self.metrics_path = Path(metrics_path)
        self.every = every
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def accuracy(self, model: Any) -> tuple[int, list[str]]:
        """How many questions `model` answers right greedily, and its answers."""
        generator = LocalGenerator(model, self.tokenizer, batch_size=self.batch_size)
        answers = [texts[0] for texts in generator.generate(
            [q.question for q in self.questions], max_new_tokens=self.max_new_tokens)]
        right = sum(grade(text, q.answer, q.grader, pattern=q.answer_pattern)
                    for text, q in zip(answers, self.questions, strict=True))
        return right, answers

    def at_step(self, state: Any, model: Any) -> bool:
        started = time.monotonic()
        right, _ = self.accuracy(model)
        n = len(self.questions)
        low, high = wilson_interval(right, n)
        record = {"step": state.global_step, "policy/questions": n,
                  "policy/accuracy": right / n, "policy/ci95": [low, high],
                  "policy/seconds": round(time.monotonic() - started, 1)}
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        logger.info("step %d policy: greedy accuracy %.1f%% on %d held-out questions",
                    state.global_step, 100 * right / n, n)
        return True
