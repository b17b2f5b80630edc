"""The `Engine` protocol: what the self-critic logic needs from a model runtime.

Every request of one call to `generate` is submitted at once, so the runtime can batch
them with each other and with other callers' work. Cancelling the awaiting task aborts
the engine requests it started.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = Mapping[str, Any]
"""A chat message as OpenAI shapes it: `{"role": ..., "content": str | [parts]}`."""


@dataclass(frozen=True)
class SamplingOptions:
    """How to decode one prompt. `choices` turns decoding into a one-token choice."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None
    """Report this many top alternatives per generated token (0 = only the chosen one)."""
    choices: tuple[str, ...] = ()
    """Restrict the one decoded token to these strings and report each one's logprob."""

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt, already rendered to text, sampled `n` times."""

    request_id: str
    prompt: str
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    n: int = 1


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token with its logprob and the top alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Completion:
    """One finished sample."""

    index: int
    text: str
    completion_tokens: int
    finish_reason: str
    """"stop", "length" or "abort"."""
    logprobs: tuple[TokenLogprob, ...] | None = None
    choice_logprobs: Mapping[str, float] | None = None
    """With `SamplingOptions.choices`: each choice's logprob at the decoded position."""


@dataclass(frozen=True)
class GenerationResult:
    """All `n` samples of one request, ordered by index."""

    request_id: str
    prompt_tokens: int
    completions: tuple[Completion, ...]
    cached_tokens: int = 0
    """Prompt tokens the engine's prefix cache served without computing them."""

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.completions)


@dataclass(frozen=True)
class StreamDelta:
    """New text for one sample of a streaming request; the last one carries the finish."""

    index: int
    text: str
    completion_tokens: int
    """Tokens this delta adds."""
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    prompt_tokens: int = 0


class EngineError(RuntimeError):
    """The engine failed or is unavailable (not the caller's fault)."""


class PromptTooLongError(ValueError):
    """The prompt plus `max_tokens` does not fit in the model's context."""


@runtime_checkable
class Engine(Protocol):
    """A model runtime: batched generation, chat rendering, health and abort."""

    model_name: str
    max_model_len: int
    supports_images: bool

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Submit every request together; return their results in the same order."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        """Yield deltas for one request as tokens arrive."""
        ...

    def render_chat(self, messages: Sequence[Message]) -> str:
        """Render messages with the model's chat template, ready for the assistant turn."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the engine would see it as a prompt."""
        ...

    async def is_healthy(self) -> bool:
        ...

    async def abort(self, request_ids: Sequence[str]) -> None:
        ...

    async def close(self) -> None:
        ...
