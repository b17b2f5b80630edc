"""A chat request on its way through the lifecycle: validated (`ChatPlan`, what admission
charges), then prepared for the engine (`PreparedChat`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import SamplingOptions
from server.chat.protocol import ChatCompletionRequest
from server.media.images import ImageRef


@dataclass(frozen=True)
class ChatPlan:
    """A validated chat request: the model and options resolved once, nothing templated."""

    request: ChatCompletionRequest
    self_critic: SelfCriticConfig | None
    image_refs: tuple[ImageRef, ...] = ()
    """The request's images, checked but not fetched."""


@dataclass(frozen=True)
class PreparedChat:
    """A templated chat request, ready for the engine."""

    request: ChatCompletionRequest
    prompt: str
    messages: list[dict[str, Any]]
    sampling: SamplingOptions
    self_critic: SelfCriticConfig | None
    image_refs: tuple[ImageRef, ...] = ()
    """The request's images, checked but not yet loaded."""
    images: tuple[Any, ...] = ()
    """The decoded images, in prompt order; `messages` holds them in place too."""
    prompt_ids: tuple[int, ...] | None = None
    """The prompt's tokens, message text with special tokens split (engine-made)."""
