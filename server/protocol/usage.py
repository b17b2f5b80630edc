"""Token usage in OpenAI's `usage` shape, the one type every endpoint answers with:
built from whole engine results, or summed from streamed deltas (each stream's prompt
and prefix-cached tokens once, every delta's completion tokens)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from critic_loop.engine import GenerationResult, StreamDelta


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None = None
    """Prompt tokens the prefix cache served (`prompt_tokens_details.cached_tokens`)."""

    @classmethod
    def of_results(cls, results: Iterable[GenerationResult]) -> Usage:
        """The usage of whole engine results, summed."""
        prompt = completion = cached = 0
        for result in results:
            prompt += result.prompt_tokens
            completion += result.completion_tokens
            cached += result.cached_tokens
        return cls(prompt, completion, cached)

    def as_dict(self) -> dict[str, Any]:
        usage: dict[str, Any] = {"prompt_tokens": self.prompt_tokens,
                                 "completion_tokens": self.completion_tokens,
                                 "total_tokens": self.prompt_tokens + self.completion_tokens}
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage


class StreamUsage:
    """Counts the deltas of one or more engine streams (told apart by `stream`)."""

    def __init__(self) -> None:
        self._prompt: dict[int, int] = {}
        self._cached: dict[int, int] = {}
        self._completion = 0

    def add(self, delta: StreamDelta, stream: int = 0) -> None:
        # Prompt and cached tokens ride on one delta of a stream (the others carry 0)
        self._prompt[stream] = max(self._prompt.get(stream, 0), delta.prompt_tokens)
        self._cached[stream] = max(self._cached.get(stream, 0), delta.cached_tokens)
        self._completion += delta.completion_tokens

    def usage(self) -> Usage:
        return Usage(sum(self._prompt.values()), self._completion, sum(self._cached.values()))
