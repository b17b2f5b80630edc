"""`POST /v1/critique`: the pairwise judge as a service."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from server.protocol.chat import ChatMessage


class CritiqueRequest(BaseModel):
    """Judge two responses (a verdict) or more (a knockout ranking) to one question."""

    model: str | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    question: str | None = None
    responses: list[str]
    judge: Literal["reason", "fast"] | None = None
    comparisons: int | None = Field(None, ge=1, le=64)
    max_tokens: int | None = Field(None, ge=1, description="Token budget of one judgment (reason).")
    temperature: float | None = Field(None, ge=0, le=2)
    seed: int | None = None

    @model_validator(mode="after")
    def _check(self) -> CritiqueRequest:
        if (self.messages is None) == (self.question is None):
            raise ValueError("give exactly one of 'question' (text) or 'messages' (a conversation)")
        if len(self.responses) < 2:
            raise ValueError(f"'responses' needs at least 2 responses to compare, got "
                             f"{len(self.responses)}")
        return self

    def has_images(self) -> bool:
        return any(m.has_images() for m in self.messages or [])
