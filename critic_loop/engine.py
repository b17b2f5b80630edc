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
JUDGE_ADAPTER = "judge"
"""The adapter name judgments ask for (`GenerationRequest.adapter`): a trained critic
exported as a judge-only LoRA adapter (`critic_loop.runtime.judge_adapter`)."""


@dataclass(frozen=True)
class StructuredOutput:
    """A grammar every sample must follow: exactly one of a JSON schema (as JSON text), any
    JSON object, a regular expression, a fixed set of strings, or an EBNF/Lark grammar.
    The engine-neutral twin of vLLM's `StructuredOutputsParams`."""

    json_schema: str | None = None
    json_object: bool = False
    regex: str | None = None
    choice: tuple[str, ...] | None = None
    grammar: str | None = None
    disable_any_whitespace: bool = False
    disable_additional_properties: bool = False
    whitespace_pattern: str | None = None

    def __post_init__(self) -> None:
        kinds = [k for k in ("json_schema", "json_object", "regex", "choice", "grammar")
                 if getattr(self, k) not in (None, False)]
        if len(kinds) != 1:
            raise ValueError("a structured output takes exactly one of json_schema, "
                             f"json_object, regex, choice or grammar; got {kinds or 'none'}")
        if self.choice is not None and not self.choice:
            raise ValueError("choice must list at least one string")


@dataclass(frozen=True)
class SamplingOptions:
    """How to decode one prompt. `choices` turns decoding into a one-token choice.

    The fields after `choices` are vLLM's extra sampling parameters (same names, defaults
    and ranges as `vllm.SamplingParams`); `structured` constrains every sample."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None
    """Report this many top alternatives per generated token (0 = only the chosen one)."""
    choices: tuple[str, ...] = ()
    """Restrict the one decoded token to these strings and report each one's logprob."""
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    top_k: int = 0
    """0 (or -1): no top-k cut."""
    min_p: float = 0.0
    min_tokens: int = 0
    logit_bias: tuple[tuple[int, float], ...] = ()
    """(token id, bias added to its logit) pairs."""
    stop_token_ids: tuple[int, ...] = ()
    bad_words: tuple[str, ...] = ()
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    structured: StructuredOutput | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        for name in ("presence_penalty", "frequency_penalty"):
            if not -2 <= getattr(self, name) <= 2:
                raise ValueError(f"{name} must be in [-2, 2], got {getattr(self, name)}")
        if not 0 < self.repetition_penalty < float("inf"):
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.top_k < -1:
            raise ValueError(f"top_k must be 0 (off) or at least 1, got {self.top_k}")
        if not 0 <= self.min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1], got {self.min_p}")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"min_tokens must be in [0, max_tokens={self.max_tokens}], "
                             f"got {self.min_tokens}")


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt, already rendered to text, sampled `n` times."""

    request_id: str
    prompt: str
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    n: int = 1
    images: tuple[Any, ...] = ()
    """Decoded images (PIL), one per image placeholder in `prompt`, in the same order; only
    for an engine whose `supports_images` is true (`critic_loop.images`)."""
    prompt_ids: tuple[int, ...] | None = None
    """The prompt's token ids as the engine's `render_prompt` made them (message text with
    special tokens split); None: the engine tokenises `prompt` itself, its special-token
    strings as control tokens, so only for text our own code wrote."""
    adapter: str | None = None
    """The LoRA adapter to run with, by name (`JUDGE_ADAPTER` for judgments); None, or a
    name the engine has no adapter for: the base weights."""


@dataclass(frozen=True)
class Prompt:
    """A rendered chat prompt and its length; with its token ids when the engine has them."""

    text: str
    tokens: int
    """Prompt tokens, images' own tokens included."""
    token_ids: tuple[int, ...] | None = None


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
    cached_tokens: int = 0
    """Prompt tokens served from the prefix cache (like `prompt_tokens`, on one delta)."""


class EngineError(RuntimeError):
    """The engine failed or is unavailable (not the caller's fault)."""


class PromptTooLongError(ValueError):
    """The prompt plus `max_tokens` does not fit in the model's context."""


class InvalidRequestError(ValueError):
    """The engine rejects a request's sampling options (the caller's fault, a 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@runtime_checkable
class RendersPrompts(Protocol):
    """An engine that renders and tokenises chat prompts with message text kept as text:
    special-token strings in a message (or a judged response) are split, never control
    tokens. Optional beside `Engine`; both methods block, so callers run them off the event
    loop (`critic_loop.prompts`). Both raise PromptTooLongError, before tokenising, for
    text that cannot fit the context by its length in characters alone."""

    def render_prompt(self, messages: Sequence[Message],
                      tools: Sequence[Mapping[str, Any]] | None = None) -> Prompt:
        ...

    def count_text_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as message content."""
        ...


@runtime_checkable
class EncodesText(Protocol):
    """An engine that tokenises text as message content (special-token strings split),
    so a caller can extend a rendered prompt's token ids with text of its own (a judge's
    reasoning continued to its verdict). Optional beside `RendersPrompts`; blocks."""

    def encode_text(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        ...


@runtime_checkable
class SamplingChecker(Protocol):
    """An engine that can tell, before any work, whether it accepts some options (token
    ids within its vocabulary, a grammar it can compile). Optional beside `Engine`."""

    def check_sampling(self, options: SamplingOptions) -> None:
        """Raise `InvalidRequestError` if `generate` would reject `options`."""
        ...


@runtime_checkable
class PromptIdChecker(Protocol):
    """An engine that can tell, before any work, whether prompt token ids are all in its
    vocabulary. Optional beside `Engine`."""

    def check_prompt_ids(self, ids: Sequence[int]) -> None:
        """Raise `InvalidRequestError` for an id outside the vocabulary."""
        ...


def check_ids_in_vocabulary(ids: Sequence[int], vocabulary: int) -> None:
    """`InvalidRequestError` (on `prompt`) for the first id outside [0, vocabulary).

    >>> check_ids_in_vocabulary([0, 5], 6)
    >>> check_ids_in_vocabulary([0, 6], 6)
    Traceback (most recent call last):
    ...
    critic_loop.engine.InvalidRequestError: token id 6 is outside the vocabulary (0 to 5)
    """
    for token in ids:
        if not 0 <= token < vocabulary:
            raise InvalidRequestError(f"token id {token} is outside the vocabulary "
                                      f"(0 to {vocabulary - 1})", "prompt")


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

    def render_chat(self, messages: Sequence[Message],
                    tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        """Render messages with the model's chat template, ready for the assistant turn;
        `tools` (OpenAI's function specs) go to the template, which may list them."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the engine would see it as a prompt. An engine whose
        `supports_images` is true also takes `images`, expanded at their placeholders
        (call it through `critic_loop.images.prompt_tokens`)."""
        ...

    async def is_healthy(self) -> bool:
        ...

    async def abort(self, request_ids: Sequence[str]) -> None:
        ...

    async def close(self) -> None:
        ...


def has_judge_adapter(engine: Any) -> bool:
    """Whether `engine` runs `JUDGE_ADAPTER` requests with a trained judge adapter: its
    optional `has_judge_adapter` attribute (an engine without it has none, and runs such
    requests with its one model)."""
    return bool(getattr(engine, "has_judge_adapter", False))


@dataclass(frozen=True)
class EngineProgress:
    """A snapshot that tells a busy engine from a hung one: `outputs` grows whenever the
    engine produces anything (a step's tokens), `in_flight` counts requests not finished."""

    outputs: int
    in_flight: int


@runtime_checkable
class ReportsProgress(Protocol):
    """An engine that reports its progress (optional beside `Engine`); without it the
    server cannot detect a hung engine, only a dead one."""

    def progress(self) -> EngineProgress:
        ...
