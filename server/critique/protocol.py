"""`POST /v1/critique`: the pairwise judge as a service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from server.protocol.base import RequestModel
from server.protocol.fields import Seed, Text
from server.protocol.messages import ChatMessage


class CritiqueRequest(RequestModel):
    """Judge two responses (a verdict) or more (a knockout ranking) to one question. A
    field this server does not implement is a 400 naming it, as on the other endpoints."""

    model: str | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    question: Text | None = None
    responses: list[Text]
    judge: Literal["reason", "fast"] | None = None
    comparisons: int | None = Field(None, ge=1, le=64)
    max_tokens: int | None = Field(None, ge=1, description="Token budget of one judgment (reason).")
    temperature: float | None = Field(None, ge=0, le=2)
    seed: Seed | None = None
    images: list[str] | None = Field(
        None, description="Image URLs (data: or allow-listed http(s)) the `question` is "
                          "about; the judge sees them before the question. With `messages`, "
                          "put image_url parts in the messages instead.")

    @model_validator(mode="after")
    def _check(self) -> CritiqueRequest:
        if (self.messages is None) == (self.question is None):
            raise ValueError("give exactly one of 'question' (text) or 'messages' (a conversation)")
        if len(self.responses) < 2:
            raise ValueError(f"'responses' needs at least 2 responses to compare, got "
                             f"{len(self.responses)}")
        if self.images and self.messages is not None:
            raise ValueError("'images' goes with 'question'; with 'messages', put the images "
                             "in the messages as image_url parts")
        return self

    def has_images(self) -> bool:
        return bool(self.images) or any(m.has_images() for m in self.messages or [])
