"""OpenAI's own wording for a request that does not fit the model's context. Gateways
(LiteLLM's context-window fallbacks, for one) recognise the error by this sentence and
the `context_length_exceeded` code, so every such error starts with it."""

from __future__ import annotations

CODE = "context_length_exceeded"


def context_length_message(context: int, prompt_tokens: int, completion_tokens: int) -> str:
    """OpenAI's sentence; callers may append their own advice after it."""
    return (f"This model's maximum context length is {context} tokens. However, you requested "
            f"{prompt_tokens + completion_tokens} tokens ({prompt_tokens} in the messages, "
            f"{completion_tokens} in the completion). Please reduce the length of the messages "
            "or completion.")
