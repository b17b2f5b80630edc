"""The completion budget against the model's context: what room the prompt leaves, and
a 400 in OpenAI's words when the prompt fills it or the asked max_tokens does not fit.
Shared by the chat and completions endpoints."""

from __future__ import annotations

from server.edge.errors import context_length_error


def room_after_prompt(context: int, prompt_tokens: int, asked: int, *, param: str,
                      prompt_param: str, prompt_advice: str) -> int:
    """The tokens left for the completion once the prompt is in, at least `asked`; else a
    400 on `prompt_param` (the prompt alone fills the context) or on `param`."""
    room = context - prompt_tokens
    if room < 1:
        raise context_length_error(context, prompt_tokens, asked, param=prompt_param,
                                   advice=prompt_advice)
    if asked > room:
        raise context_length_error(context, prompt_tokens, asked, param=param,
                                   advice=f"Lower {param} to at most {room}.")
    return room
