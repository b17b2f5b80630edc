"""OpenAI's legacy `POST /v1/completions`: the request (a raw prompt, no chat template)
and its `text_completion` answers. The fields it shares with chat (sampling, stop,
streaming, structured outputs) are `GenerationFields`, so both endpoints take the same."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from pydantic import Field, field_validator, model_validator

from critic_loop.engine import Completion, SamplingOptions, TokenLogprob
from critic_loop.generation_defaults import GenerationDefaults
from server.protocol.fields import Text
from server.protocol.finish_reason import finish_reason
from server.protocol.generation import GenerationFields
from server.protocol.usage import Usage

MAX_LOGPROBS = 20
"""As vLLM's default `--max-logprobs` (OpenAI itself allows 5)."""


class CompletionRequest(GenerationFields):
    """`POST /v1/completions`. A field this server does not implement is a 400 naming it."""

    prompt: Text | list[Text] | list[int] | list[list[int]] = Field(
        description="Text, or a list of texts (each one sampled `n` times). Token-id prompts "
                    "are refused: this server tokenizes text itself.")
    max_tokens: int | None = Field(16, ge=1, description="Default (also for null): 16, as "
                                                          "OpenAI's and vLLM's.")
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS,
                                 description="Top alternatives per token (0: the chosen only).")
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1)

    @field_validator("prompt")
    @classmethod
    def _text_prompts(cls, prompt: str | list[Any]) -> str | list[Any]:
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not prompts:
            raise ValueError("give at least one prompt")
        if not all(isinstance(p, str) for p in prompts):
            raise ValueError("token-id prompts are not supported here; send the text")
        if not all(prompts):
            raise ValueError("a prompt must not be empty")  # vLLM refuses an empty prompt
        return prompt

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, suffix: str | None) -> str | None:
        if suffix:
            raise ValueError("suffix (insertion) is not supported: the model has no "
                             "fill-in-the-middle mode here")
        return suffix

    @model_validator(mode="after")
    def _check(self) -> CompletionRequest:
        if self.best_of is not None and self.best_of != self.n:
            raise ValueError("best_of is not supported (it would rank samples by "
                             "likelihood); for best-of-N with a judge use /v1/chat/completions "
                             "with self_critic")
        if self.echo and self.logprobs is not None:
            raise ValueError("echo with logprobs needs the prompt's logprobs, which this "
                             "server does not compute; drop one of them")
        return self

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)  # type: ignore[arg-type]

    def sampling(self, max_tokens: int, defaults: GenerationDefaults) -> SamplingOptions:
        """The engine's options; `defaults` (the model's) fill omitted sampling fields."""
        return SamplingOptions(
            max_tokens=max_tokens, seed=self.seed, stop=self.stop_sequences(),
            logprobs=self.logprobs, structured=self.structured_output(),
            **self.sampling_extras(defaults))


# -- responses ----------------------------------------------------------------------------
def completion_logprobs(logprobs: Sequence[TokenLogprob] | None,
                        offset: int = 0) -> dict[str, Any] | None:
    """The legacy logprobs object: parallel lists, `text_offset` in characters."""
    if logprobs is None:
        return None
    tokens = [lp.token for lp in logprobs]
    starts = [offset + s for s in accumulate((len(t) for t in tokens[:-1]), initial=0)]
    return {"tokens": tokens,
            "token_logprobs": [lp.logprob for lp in logprobs],
            "top_logprobs": [dict(lp.top) for lp in logprobs],
            "text_offset": starts if tokens else []}


def completion_choice(index: int, text: str, finish: str | None,
                      logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": logprobs,
            "finish_reason": finish_reason(finish) if finish else None}


def text_completion(completion_id: str, model: str, created: int,
                    choices: list[dict[str, Any]], usage: Usage | None = None) -> dict[str, Any]:
    """A `text_completion` object (a whole answer, or one stream chunk)."""
    body: dict[str, Any] = {"id": completion_id, "object": "text_completion",
                            "created": created, "model": model, "choices": choices,
                            "system_fingerprint": None}
    if usage is not None:
        body["usage"] = usage.as_dict()
    return body


def choices_of(completions: Sequence[Completion], first_index: int,
               echo: str | None) -> list[dict[str, Any]]:
    """Whole choices for one prompt's samples, numbered from `first_index`."""
    prefix = echo or ""
    return [completion_choice(first_index + c.index, prefix + c.text, c.finish_reason,
                              completion_logprobs(c.logprobs, len(prefix)))
            for c in completions]

