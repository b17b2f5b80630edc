"""Chat prompts tokenised so that message text can never become a control token.

The chat template's own special tokens (`<|im_start|>`, `<|im_end|>`) stay control tokens;
the same strings inside a message, a candidate or a critiqued response are plain text. The
template is rendered with a placeholder in place of each text, and each span is tokenised on
its own: the template's with special tokens recognised, the texts with special tokens split
(Hugging Face's `split_special_tokens`). Size is checked first, before any tokenising.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from critic_loop.engine import Message, PromptTooLongError

logger = logging.getLogger(__name__)

Renderer = Callable[[list[dict[str, Any]], "Sequence[Mapping[str, Any]] | None"], str]
"""Renders messages (and tools) with the model's chat template, ready for the assistant."""


class ChatTokenizer:
    """Renders and tokenises chat prompts for one Hugging Face (fast) tokenizer.

    Blocking, and safe to call from several threads at once: it only reads two private
    copies of the Rust tokenizer, one per way of treating special tokens (switching one
    tokenizer's mode per call, as `transformers` does, races between threads). A slow
    (Python) tokenizer is asked per call with `split_special_tokens`."""

    def __init__(self, tokenizer: Any, context: int) -> None:
        self._slow = None if hasattr(tokenizer, "backend_tokenizer") else tokenizer
        if self._slow is None:
            from tokenizers import Tokenizer

            backend = tokenizer.backend_tokenizer
            self._template = Tokenizer.from_str(backend.to_str())
            self._text = Tokenizer.from_str(backend.to_str())
            for copy, split in ((self._template, False), (self._text, True)):
                copy.no_truncation()
                copy.no_padding()
                copy.encode_special_tokens = split
        self.context = context
        self.token_chars = longest_token_chars(tokenizer)
        """No token stands for more characters than this (see `longest_token_chars`)."""

    def render(self, messages: Sequence[Message], renderer: Renderer,
               tools: Sequence[Mapping[str, Any]] | None = None) -> tuple[str, list[int]]:
        """The rendered prompt and its token ids. Raises PromptTooLongError, before
        rendering, when the messages' text certainly cannot fit the context."""
        self.check_size(sum(len(t) for t in _texts_of(messages)), "your messages hold")
        spans = _spans(messages, renderer, tools)
        text = "".join(s for s, _ in spans)
        return text, self._encode_spans(spans)

    def count_text(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as message content (special tokens split)."""
        for text in texts:
            self.check_size(len(text), "one text holds")
        return [len(ids) for ids in self._encode(list(texts), split=True)]

    def encode_text(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """Ids of each text as message content (special tokens split)."""
        for text in texts:
            self.check_size(len(text), "one text holds")
        return [tuple(ids) for ids in self._encode(list(texts), split=True)]

    def encode_trusted(self, text: str) -> list[int]:
        """Ids of a prompt rendered by our own code (special tokens are control tokens)."""
        self.check_size(len(text), "the prompt holds")
        return self._encode([text], split=False)[0]

    def check_size(self, chars: int, what: str) -> None:
        """PromptTooLongError when `chars` characters cannot fit: every token spells at
        most `token_chars` of them, so they take at least chars / token_chars tokens."""
        if chars <= self.context * self.token_chars:
            return
        at_least = -(-chars // self.token_chars)
        raise PromptTooLongError(  # OpenAI's first sentence, which gateways match
            f"This model's maximum context length is {self.context} tokens. However, {what} "
            f"{chars} characters, at least {at_least} tokens (no token spells more than "
            f"{self.token_chars}). Please reduce the length of the messages.")

    def _encode_spans(self, spans: Sequence[tuple[str, bool]]) -> list[int]:
        encoded = {split: iter(self._encode([s for s, is_text in spans if is_text is split
                                             and s], split=split))
                   for split in (False, True)}
        ids: list[int] = []
        for span, is_text in spans:
            if span:
                ids.extend(next(encoded[is_text]))
        return ids

    def _encode(self, texts: list[str], *, split: bool) -> list[list[int]]:
        if not texts:
            return []
        if self._slow is not None:
            return [self._slow.encode(t, add_special_tokens=False, split_special_tokens=split)
                    for t in texts]
        # encode_batch releases the GIL while it runs, so the event loop keeps going
        tokenizer = self._text if split else self._template
        return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def longest_token_chars(tokenizer: Any) -> int:
    """The most characters (in fact UTF-8 bytes, never fewer) one token stands for.

    A byte-level vocabulary spells each byte as one character; other vocabularies are
    measured in UTF-8 bytes, which over-counts SentencePiece's "▁" and its byte tokens.
    An over-count only loosens the bound: text of c characters is c or more bytes, so it
    takes at least c / this many tokens (for a tokenizer that drops no text).
    """
    from tokenizers import decoders

    backend = getattr(tokenizer, "backend_tokenizer", None)
    byte_level = backend is not None and isinstance(backend.decoder, decoders.ByteLevel)
    added = set(tokenizer.get_added_vocab())
    return max(len(t) if byte_level and t not in added else len(t.encode())
               for t in tokenizer.get_vocab())


def _spans(messages: Sequence[Message], renderer: Renderer,
           tools: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, bool]]:
    """The prompt as (span, is_message_text) in order. A template that changes the text it
    is given (trims it, say) is followed when stripping the texts reproduces its rendering;
    otherwise the texts go in unchanged, which may differ from it only in that change."""
    nonce = secrets.token_hex(8)
    texts: list[str] = []

    def hold(text: str) -> str:
        texts.append(text)
        return f"\ue000{nonce}:{len(texts) - 1}\ue001"

    skeleton = renderer(_with_texts(messages, hold), tools)
    pieces = re.split(f"\ue000{nonce}:(\\d+)\ue001", skeleton)
    plain = renderer([dict(m) for m in messages], tools)
    for fill in (lambda t: t, str.strip):
        spans = [(piece, False) if k % 2 == 0 else (fill(texts[int(piece)]), True)
                 for k, piece in enumerate(pieces)]
        if "".join(s for s, _ in spans) == plain:
            return spans
    logger.debug("the chat template changes message text; using the text as given")
    return [(piece, False) if k % 2 == 0 else (texts[int(piece)], True)
            for k, piece in enumerate(pieces)]


def _with_texts(messages: Sequence[Message], swap: Callable[[str], str]) -> list[dict[str, Any]]:
    """A copy of `messages` with each text (a string content or a text part) swapped."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            content = swap(content)
        elif isinstance(content, list):
            content = [{**p, "text": swap(p["text"])}
                       if isinstance(p, Mapping) and isinstance(p.get("text"), str) else p
                       for p in content]
        out.append({**message, "content": content})
    return out


def _texts_of(messages: Sequence[Message]) -> list[str]:
    found: list[str] = []
    _with_texts(messages, lambda t: found.append(t) or t)
    return found
