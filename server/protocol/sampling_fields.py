"""OpenAI's penalties and `logit_bias`, and vLLM's extra sampling fields, validated with
vLLM's ranges (so a bad value is a 400 here, not an engine error) and handed to
`SamplingOptions` under the same names, with the model's own defaults (its
`generation_config.json`) for the sampling fields a request omits."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from critic_loop.generation_defaults import SAMPLING_FIELDS, GenerationDefaults
from server.protocol.base import RequestModel

Bias = Annotated[float, Field(ge=-100, le=100)]
TokenId = Annotated[int, Field(ge=0)]
Word = Annotated[str, Field(min_length=1)]


class SamplingFields(RequestModel):
    """Sampling fields beyond temperature/top_p (which each request declares itself);
    unset means the model's default, else vLLM's."""

    model_config = ConfigDict(allow_inf_nan=False)

    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[TokenId, Bias] | None = Field(
        None, description="Token id (as a string key, like OpenAI) → bias in [-100, 100].")
    # vLLM's extras
    repetition_penalty: float | None = Field(None, gt=0)
    top_k: int | None = Field(None, ge=-1, description="0 or -1: off.")
    min_p: float | None = Field(None, ge=0, le=1)
    min_tokens: int = Field(0, ge=0)
    stop_token_ids: list[TokenId] | None = None
    bad_words: list[Word] | None = None
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False

    def sampling_extras(self, defaults: GenerationDefaults) -> dict[str, Any]:
        """These fields and the request's temperature/top_p as `SamplingOptions` keyword
        arguments. The one place a model's sampling defaults apply: each of
        `SAMPLING_FIELDS` the request omits takes `defaults`' value; left out when neither
        has one, so `SamplingOptions`' neutral (vLLM's) default holds."""
        extras: dict[str, Any] = {
            "min_tokens": self.min_tokens, "ignore_eos": self.ignore_eos,
            "skip_special_tokens": self.skip_special_tokens,
            "spaces_between_special_tokens": self.spaces_between_special_tokens,
            "include_stop_str_in_output": self.include_stop_str_in_output,
            "logit_bias": tuple((self.logit_bias or {}).items()),
            "stop_token_ids": tuple(self.stop_token_ids or ()),
            "bad_words": tuple(self.bad_words or ()),
        }
        extras.update(defaults.fill({name: getattr(self, name, None)
                                     for name in SAMPLING_FIELDS}))
        return extras
