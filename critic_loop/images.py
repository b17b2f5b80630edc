"""Images inside chat messages: where they are, and the tokens they take in a prompt.

Messages carry their images in place, as `{"type": "image", "image": <decoded image>}`
parts; rendering a conversation puts one placeholder where each part is, so the images
a prompt needs are the conversation's image parts in order (`images_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from critic_loop.engine import Engine, Message

IMAGE_PART_TYPES = frozenset({"image", "image_url"})


def is_image_part(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") in IMAGE_PART_TYPES


def images_of(messages: str | Sequence[Message]) -> tuple[Any, ...]:
    """The decoded images of a conversation, in placeholder order (a `str` has none).

    >>> images_of([{"role": "user", "content": [{"type": "image", "image": "A"},
    ...                                         {"type": "text", "text": "?"}]}])
    ('A',)
    """
    if isinstance(messages, str):
        return ()
    found = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            found.extend(p["image"] for p in content if is_image_part(p) and "image" in p)
    return tuple(found)


def with_images(messages: Sequence[Message], images: Sequence[Any]) -> list[dict[str, Any]]:
    """A copy of `messages` whose image parts, in order, hold `images` as `{"type": "image",
    "image": ...}`. Raises ValueError when the counts differ.

    >>> with_images([{"role": "user", "content": [{"type": "image"}]}], ["A"])
    [{'role': 'user', 'content': [{'type': 'image', 'image': 'A'}]}]
    """
    remaining = list(images)
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = [{"type": "image", "image": remaining.pop(0)}
                       if is_image_part(p) and remaining else p for p in content]
            if any(is_image_part(p) and "image" not in p for p in content):
                raise ValueError("more image parts than images")
        out.append({**message, "content": content})
    if remaining:
        raise ValueError(f"{len(remaining)} images have no image part to go in")
    return out


def prompt_tokens(engine: Engine, prompt: str, images: Sequence[Any] = ()) -> int:
    """Tokens of a rendered prompt with its images expanded at their placeholders. Without
    images this is `engine.count_tokens(prompt)`, so text-only engines need no image API."""
    if not images:
        return engine.count_tokens(prompt)
    return engine.count_tokens(prompt, images)  # type: ignore[call-arg]
