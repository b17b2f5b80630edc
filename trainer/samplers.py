"""Where pair mining gets its answers: a served model (any OpenAI-compatible URL, through
`evaluation`'s client and its sampling request) or a local model directory (transformers).

Both send the question as `eval policy` does (one user turn, the question as given) and
sample at the given temperature, so the pairs are the answers the policy gives when served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.client import ChatClient
from evaluation.dataset import Question
from evaluation.strategies import RequestSettings, Run, request_body


@dataclass(frozen=True)
class Budget:
    """Answer length in tokens: plain questions, and code questions (a whole function)."""

    max_tokens: int = 64
    code_max_tokens: int = 384

    def of(self, question: Question) -> int:
        return self.code_max_tokens if question.code is not None else self.max_tokens


class EndpointSampler:
    """n answers per question in one `n`-sampling chat request, seeded per question
    (`evaluation.strategies.question_seed`), as `eval policy`'s majority run asks."""

    def __init__(self, client: ChatClient, model: str, *, temperature: float = 1.0,
                 budget: Budget = Budget(), seed: int = 0) -> None:
        self.client = client
        self.model = model
        self.temperature = temperature
        self.budget = budget
        self.seed = seed

    async def sample(self, questions: Sequence[Question], n: int) -> list[list[str]]:
        async def one(question: Question) -> list[str]:
            settings = RequestSettings(model=self.model, max_tokens=self.budget.of(question),
                                       temperature=self.temperature, seed=self.seed)
            reply = await self.client.chat(request_body(Run("sampling", n), question, settings))
            return reply.texts

        return list(await asyncio.gather(*(one(q) for q in questions)))


class LocalSampler:
    """n answers per question from a local model with transformers (`LocalGenerator`)."""

    def __init__(self, generator: Any, *, temperature: float = 1.0, budget: Budget = Budget(),
                 seed: int = 0) -> None:
        self.generator = generator
        self.temperature = temperature
        self.budget = budget
        self.seed = seed
        self._calls = 0

    async def sample(self, questions: Sequence[Question], n: int) -> list[list[str]]:
        self._calls += 1
        out: dict[int, list[str]] = {}
        for tokens in sorted({self.budget.of(q) for q in questions}):
            group = [i for i, q in enumerate(questions) if self.budget.of(q) == tokens]
            texts = await asyncio.to_thread(
                self.generator.generate, [questions[i].question for i in group], n=n,
                temperature=self.temperature, max_new_tokens=tokens,
                seed=self.seed + 100_003 * self._calls)
            out.update(zip(group, texts, strict=True))
        return [out[i] for i in range(len(questions))]
