"""Token usage of streamed answers, summed from the engine's deltas: each stream's prompt
(and prefix-cached) tokens once, every delta's completion tokens."""

from __future__ import annotations

from critic_loop.engine import StreamDelta
from server.chat.response import Usage


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
