"""Rendering prompts and counting text through any engine, message text kept as text.

An engine that `RendersPrompts` (vLLM) tokenises message text with special tokens split
and hands the token ids over, so a request is tokenised once; any other engine renders
with `render_chat` and counts with `count_tokens`. All of it blocks: callers run it off the
event loop (the judge with `render_judge_prompts`, the server in a worker thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from critic_loop.engine import (
    EncodesText,
    Engine,
    Message,
    Prompt,
    PromptTooLongError,
    RendersPrompts,
)
from critic_loop.images import images_of, prompt_tokens


def render_prompt(engine: Engine, messages: Sequence[Message],
                  tools: Sequence[Mapping[str, Any]] | None = None) -> Prompt:
    """`messages` rendered with the engine's chat template, and their length in tokens."""
    if isinstance(engine, RendersPrompts):
        return engine.render_prompt(messages, tools)
    text = engine.render_chat(messages, tools=tools) if tools else engine.render_chat(messages)
    return Prompt(text, prompt_tokens(engine, text, images_of(messages)))


def count_text_tokens(engine: Engine, texts: Sequence[str]) -> list[int]:
    """Tokens of each text as message content (PromptTooLongError: certainly too long)."""
    if isinstance(engine, RendersPrompts):
        return engine.count_text_tokens(texts)
    return [engine.count_tokens(t) for t in texts]


def continue_prompt(engine: Engine, prompt: Prompt, text: str) -> Prompt:
    """`prompt` with `text` appended as the start of the assistant's answer, which the
    engine then continues. `text` is tokenised as message text (its special-token strings
    split) when the prompt carries token ids; an engine that gives ids must then encode
    text too (`EncodesText`). Blocking, like rendering."""
    if prompt.token_ids is None:
        return Prompt(prompt.text + text, prompt.tokens + count_text_tokens(engine, [text])[0])
    if not isinstance(engine, EncodesText):
        raise TypeError(f"{type(engine).__name__} gives prompt token ids but cannot encode "
                        "text to extend them (EncodesText)")
    [ids] = engine.encode_text([text])
    return Prompt(prompt.text + text, prompt.tokens + len(ids), prompt.token_ids + ids)


async def render_judge_prompts(engine: Engine, conversations: Sequence[Sequence[Message]]
                               ) -> list[Prompt | None]:
    """Each conversation rendered, in one worker thread; None for one whose text alone
    cannot fit the context (its judgment is never sent)."""
    def render_all() -> list[Prompt | None]:
        prompts: list[Prompt | None] = []
        for messages in conversations:
            try:
                prompts.append(render_prompt(engine, messages))
            except PromptTooLongError:
                prompts.append(None)
        return prompts

    if not conversations:
        return []
    return await asyncio.to_thread(render_all)
