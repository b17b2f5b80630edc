"""Prefix-cache hits of a whole self-critic run, for `usage.prompt_tokens_details`.

A self-critic response's `usage.prompt_tokens` counts the candidates' prompt and every
judgment's prompt, so its `cached_tokens` counts the cache hits of all of them too (judge
prompts share the question with each other, which is where most hits are). The counter
wraps the engine for one run and sums what each result and stream reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from critic_loop.engine import Engine, GenerationRequest, GenerationResult, StreamDelta


class CachedTokenCounter:
    """An `Engine` that passes everything to `engine` and sums prefix-cache hits."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.cached_tokens = 0

    def __getattr__(self, name: str) -> Any:  # model_name, render_chat, abort, ...
        return getattr(self._engine, name)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = await self._engine.generate(requests)
        self.cached_tokens += sum(r.cached_tokens for r in results)
        return results

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        cached = 0
        try:
            async for delta in self._engine.stream(request):
                cached = max(cached, delta.cached_tokens)
                yield delta
        finally:
            self.cached_tokens += cached
