"""Chat messages as OpenAI sends them (text, or parts with images), shared by chat and
critique requests and read by the media checks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from server.protocol.base import OpenAIObject
from server.protocol.fields import Text


class TextPart(OpenAIObject):
    type: Literal["text"]
    text: Text


class ImageURL(OpenAIObject):
    url: str
    detail: str | None = None


class ImagePart(OpenAIObject):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(OpenAIObject):
    model_config = ConfigDict(extra="allow")  # a tool conversation's fields, for its template

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[ContentPart] | None = None
    name: str | None = None

    def has_images(self) -> bool:
        return isinstance(self.content, list) and any(isinstance(p, ImagePart) for p in self.content)

    def as_text_dict(self) -> dict[str, Any]:
        """The message for a text-only chat template: parts joined, developer → system."""
        content = self.content
        if isinstance(content, list):
            content = "\n".join(p.text for p in content if isinstance(p, TextPart))
        role = "system" if self.role == "developer" else self.role
        message = {"role": role, "content": content or ""}
        for key in ("tool_calls", "tool_call_id"):  # a tool conversation, for its template
            if (value := (self.model_extra or {}).get(key)) is not None:
                message[key] = value
        return message
