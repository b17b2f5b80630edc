"""The finish reason every endpoint's choices carry, in the words OpenAI clients know."""

from __future__ import annotations


def finish_reason(reason: str | None) -> str:
    """vLLM says "abort" for a cancelled sample; OpenAI clients only know stop/length."""
    return "length" if reason == "length" else "stop"
