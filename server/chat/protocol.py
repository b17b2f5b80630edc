"""Chat completion request models (OpenAI's fields plus `self_critic`) and their
conversion to engine parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from critic_loop.config import SELECTS
from critic_loop.engine import SamplingOptions, StructuredOutput
from critic_loop.generation_defaults import GenerationDefaults
from server.chat.tool_fields import ToolFields
from server.protocol.base import RequestModel
from server.protocol.generation import GenerationFields
from server.protocol.messages import ChatMessage


class SelfCriticOptions(RequestModel):
    """Per-request self-critic settings; unset fields take the server's defaults."""

    candidates: int | None = Field(None, ge=1, description="How many candidates to sample (N).")
    judge: Literal["reason", "fast"] | None = None
    comparisons: int | None = Field(None, ge=1, le=64, description="Judgments per match (K).")
    judge_max_tokens: int | None = Field(None, ge=1)
    judge_temperature: float | None = Field(None, ge=0, le=2)
    return_trace: bool = False
    schedule: Literal["rounds", "pipelined"] | None = Field(
        None, description="'rounds': each round's judgments batched together; 'pipelined': a "
                          "pair is judged as soon as both its candidates are finished.")
    merge: Literal["text", "answer"] | None = Field(
        None, description="'text': identical candidates are judged once; 'answer': candidates "
                          "with the same extracted answer are, and vote counts settle splits.")
    answer_format: Literal["auto", "number", "boxed", "choice"] = Field(
        "auto", description="How merge='answer' reads an answer: last \\boxed{} else last "
                            "number ('auto'), 'number', 'boxed', or a letter A-E ('choice').")
    answer_pattern: str | None = Field(
        None, max_length=500, description="A regular expression that reads the answer "
                                          "instead: its last match, group 1 if any.")
    select: Literal[SELECTS] | None = Field(
        None, description="How the winner is chosen: 'knockout' (pairwise bracket), "
                          "'league' (every pair, by win rate), 'vote' (majority answer), "
                          "'confidence' (confidence-weighted vote), 'hybrid' (vote and "
                          "confidence, the judge weighted on the top two).")
    include_greedy: bool | None = Field(
        None, description="Make candidate 0 the greedy (temperature 0) decode.")
    judge_weight: float | None = Field(
        None, ge=0, le=1, description="Hybrid: the judge's reliability in [0, 1], its "
                                      "verdict's weight between the top two (0: not asked).")
    adaptive: Literal["off", "agreement", "confidence"] = Field(
        "off", description="'agreement': stop the running candidates once the leading "
                           "answer cannot be overtaken; 'confidence': also stop a candidate "
                           "whose confidence falls below its first finished peers' (DeepConf).")
    adaptive_wave: int = Field(0, ge=0, description="With adaptive: candidates per wave, a "
                                                    "wave added only while unsettled; 0: all.")


class ChatCompletionRequest(GenerationFields, ToolFields):
    """`POST /v1/chat/completions`. A field this server does not implement is a 400 that
    names it; OpenAI's advisory fields (`user`, `metadata`, ...) are accepted and ignored."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    self_critic: bool | SelfCriticOptions | None = None

    @model_validator(mode="after")
    def _check(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs: true")
        self.constraint()
        return self

    def constraint(self) -> StructuredOutput | None:
        """What every sample must follow: a forced tool call's schema, or the request's
        structured output; never both (as in vLLM)."""
        structured = self.structured_output()
        forced = self.tool_constraint(self.parallel_tool_calls)
        if forced is not None and structured is not None:
            raise ValueError("Use either a structured output or a named/required "
                             "tool_choice, not both.")
        return forced or structured

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def sampling(self, max_tokens: int, defaults: GenerationDefaults) -> SamplingOptions:
        """The engine's options; `defaults` (the model's) fill omitted sampling fields."""
        return SamplingOptions(
            max_tokens=max_tokens,
            seed=self.seed,
            stop=self.stop_sequences(),
            logprobs=(self.top_logprobs or 0) if self.logprobs else None,
            structured=self.constraint(),
            **self.sampling_extras(defaults),
        )
