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
from server.protocol.answers import Usage, answer_object, finish_reason
from server.protocol.fields import Text
from server.protocol.generation import GenerationFields

MAX_LOGPROBS = 20
"""As vLLM's default `--max-logprobs` (OpenAI itself allows 5)."""


class CompletionRequest(GenerationFields):
    """`POST /v1/completions`. A field this server does not implement is a 400 naming it."""

    prompt: Text | list[Text] | list[int] | list[list[int]] = Field(
        description="Text, a list of texts, token ids, or a list of token-id lists (each "
                    "prompt sampled `n` times). Ids are sent to the model as they are.")
    max_tokens: int | None = Field(16, ge=1, description="Default (also for null): 16, as "
                                                          "OpenAI's and vLLM's.")
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS,
                                 description="Top alternatives per token (0: the chosen only).")
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1)

    @field_validator("prompt")
    @classmethod
    def _some_prompts(cls, prompt: str | list[Any]) -> str | list[Any]:
        prompts = _listed(prompt)
        if not prompts:
            raise ValueError("give at least one prompt")
        if not all(prompts):
            raise ValueError("a prompt must not be empty")  # vLLM refuses an empty prompt
        for ids in prompts:
            if not isinstance(ids, str) and min(ids) < 0:
                raise ValueError(f"token id {min(ids)} is negative")
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
        if self.echo and not all(isinstance(p, str) for p in self.prompts()):
            raise ValueError("echo needs text prompts: send the text, not token ids")
        if self.echo and self.logprobs is not None:
            raise ValueError("echo with logprobs needs the prompt's logprobs, which this "
                             "server does not compute; drop one of them")
        return self

    def prompts(self) -> list[str | tuple[int, ...]]:
        """Each prompt: its text, or its token ids."""
        return [p if isinstance(p, str) else tuple(p) for p in _listed(self.prompt)]

    def sampling(self, max_tokens: int, defaults: GenerationDefaults) -> SamplingOptions:
        """The engine's options; `defaults` (the model's) fill omitted sampling fields."""
        return SamplingOptions(
            max_tokens=max_tokens, seed=self.seed, stop=self.stop_sequences(),
            logprobs=self.logprobs, structured=self.structured_output(),
            **self.sampling_extras(defaults))


def _listed(prompt: str | list[Any]) -> list[Any]:
    """The prompts a `prompt` field holds: one text, texts, one id list, or id lists."""
    if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
        return [prompt]
    return list(prompt)


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
    return answer_object("text_completion", completion_id, model, created, choices, usage)


def choices_of(completions: Sequence[Completion], first_index: int,
               echo: str | None) -> list[dict[str, Any]]:
    """Whole choices for one prompt's samples, numbered from `first_index`."""
    prefix = echo or ""
    return [completion_choice(first_index + c.index, prefix + c.text, c.finish_reason,
                              completion_logprobs(c.logprobs, len(prefix)))
            for c in completions]

