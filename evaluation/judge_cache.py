"""An engine wrapper that generates each deterministic request once, for `eval select`.

Strategies judged on the same candidates ask many of the same judgments (a knockout's
matches are a league's too), and a greedy judge (fast mode, or reason mode at temperature
0) answers a prompt the same way every time. Replaying its first answer gives every
strategy exactly the judgment the server would get, at the cost of one generation. The
strategies still count every judgment they asked for; `sent` counts what reached the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from critic_loop.engine import (
    EncodesText,
    Engine,
    GenerationRequest,
    GenerationResult,
    Message,
    Prompt,
    StreamDelta,
)
from critic_loop.prompts import count_text_tokens, render_prompt


class ReplayingEngine:
    """`inner`, with deterministic requests generated once and replayed after."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.max_model_len = inner.max_model_len
        self.supports_images = inner.supports_images
        self.sent = 0
        """Requests that reached `inner`."""
        self.replayed = 0
        self._results: dict[Hashable, asyncio.Future[GenerationResult]] = {}

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def _one(self, request: GenerationRequest) -> GenerationResult:
        key = _replay_key(request)
        if key is None:
            self.sent += 1
            [result] = await self.inner.generate([request])
            return result
        future = self._results.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._results[key] = future
            self.sent += 1
            try:
                [result] = await self.inner.generate([request])
            except BaseException as exc:
                del self._results[key]  # a failure is not an answer: a later ask retries
                future.set_exception(exc)
                future.exception()  # retrieved: nobody else may be waiting
                raise
            future.set_result(result)
        else:
            self.replayed += 1
        return replace(await asyncio.shield(future), request_id=request.request_id)

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        return self.inner.stream(request)

    def render_chat(self, messages: Sequence[Message],
                    tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        return self.inner.render_chat(messages, tools)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def render_prompt(self, messages: Sequence[Message],
                      tools: Sequence[Mapping[str, Any]] | None = None) -> Prompt:
        return render_prompt(self.inner, messages, tools)

    def count_text_tokens(self, texts: Sequence[str]) -> list[int]:
        return count_text_tokens(self.inner, texts)

    def encode_text(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """The inner engine's (a reason judgment forced to its verdict extends its prompt's
        token ids with the text that closes the thinking)."""
        if not isinstance(self.inner, EncodesText):
            raise TypeError(f"{type(self.inner).__name__} cannot encode text (EncodesText)")
        return self.inner.encode_text(texts)

    async def is_healthy(self) -> bool:
        return await self.inner.is_healthy()

    async def abort(self, request_ids: Sequence[str]) -> None:
        await self.inner.abort(request_ids)

    async def close(self) -> None:
        await self.inner.close()


def _replay_key(request: GenerationRequest) -> Hashable | None:
    """What a deterministic request's answer depends on; None for a sampled one (or one
    with images, which are not compared here)."""
    sampling = request.sampling
    if request.images or not (sampling.temperature == 0 or sampling.choices):
        return None
    prompt = request.prompt if request.prompt_ids is None else request.prompt_ids
    return prompt, replace(sampling, seed=None), request.n  # a greedy decode ignores seeds
