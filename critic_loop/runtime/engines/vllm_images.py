"""Images for the vLLM engine: whether the model reads them, the tokens they take, and
the prompt vLLM is given (token ids with placeholders, plus `multi_modal_data`).

A conversation with images is rendered by the model's own processor (its chat template
puts each model-specific placeholder where the image part was); vLLM expands every
placeholder into the image's tokens, so the context budget counts those tokens up front.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from critic_loop.engine import Message
from critic_loop.images import is_image_part

logger = logging.getLogger(__name__)

_CACHE_SIZE = 256


def model_reads_images(model_config: Any) -> bool:
    """vLLM's answer: a multimodal architecture in its model registry whose configuration
    leaves image inputs on (not `--language-model-only`, not `--limit-mm-per-prompt
    image=0`)."""
    try:
        if not (model_config.is_multimodal_model and model_config.supports_multimodal_inputs):
            return False
        return model_config.multimodal_config.get_limit_per_prompt("image") > 0
    except Exception:  # a config vLLM cannot place is treated as text only
        logger.debug("cannot tell whether the model reads images", exc_info=True)
        return False


def has_images(messages: Sequence[Message]) -> bool:
    return any(isinstance(m.get("content"), list) and any(is_image_part(p) for p in m["content"])
               for m in messages)


def engine_prompt(prompt_ids: list[int], images: Sequence[Any]) -> dict[str, Any]:
    """vLLM's `TokensPrompt`: the ids with one placeholder per image, and the images in the
    same order as `multi_modal_data` (vLLM's own chat server submits the same shape)."""
    prompt: dict[str, Any] = {"prompt_token_ids": prompt_ids}
    if images:
        prompt["multi_modal_data"] = {"image": [decoded(image) for image in images]}
    return prompt


def decoded(image: Any) -> Any:
    """A PIL image as vLLM takes it; a file path (a training or evaluation row's `image`)
    is opened as RGB, and anything else is passed on as it is."""
    if isinstance(image, (str, Path)):
        from PIL import Image

        with Image.open(image) as opened:
            return opened.convert("RGB")
    return image


class ImagePrompter:
    """The model's Hugging Face processor, for rendering and measuring image prompts."""

    def __init__(self, processor: Any) -> None:
        self._processor = processor
        self._token = processor.image_token
        # The placeholder's own ids without an image: what one image's expansion replaces
        self._placeholder = len(processor.tokenizer(self._token, add_special_tokens=False)
                                ["input_ids"])
        self._counts: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model: str, trust_remote_code: bool = False) -> ImagePrompter:
        from transformers import AutoProcessor

        return cls(AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code))

    def render(self, messages: Sequence[Message],
               tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        return self._processor.apply_chat_template(
            [dict(m) for m in messages], tools=[dict(t) for t in tools] if tools else None,
            tokenize=False, add_generation_prompt=True)

    def extra_tokens(self, images: Sequence[Any]) -> int:
        """Tokens `images` add to a prompt beyond their placeholders."""
        return sum(self.image_tokens(image) - self._placeholder for image in images)

    def image_tokens(self, image: Any) -> int:
        """Tokens one image becomes, as the processor expands it (its size may matter)."""
        key = id(image)
        with self._lock:  # measured in worker threads and on the event loop
            if key in self._counts:
                self._counts.move_to_end(key)
                return self._counts[key][1]
        ids = self._processor(text=self._token, images=[decoded(image)],
                              add_special_tokens=False)["input_ids"][0]
        with self._lock:
            self._counts[key] = (image, len(ids))  # the image is kept: its id stays unique
            if len(self._counts) > _CACHE_SIZE:
                self._counts.popitem(last=False)
        return len(ids)
