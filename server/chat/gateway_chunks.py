"""Content-free stream chunks that OpenAI-compatible gateways pass on: the keep-alive
while a self-critic tournament runs, and the self-critic summary.

Gateways that parse and rebuild the stream (LiteLLM) drop SSE comments, chunks whose
delta is only `content: ""`, and any top-level field they do not know. A delta that also
carries OpenAI's `annotations` (empty: nothing to cite) counts as non-empty there and is
forwarded with its other fields, so the summary rides on such a delta
(`choices[0].delta.self_critic`). To a direct client both chunks add no text.
"""

from __future__ import annotations

from typing import Any


def keepalive_choice(index: int = 0) -> dict[str, Any]:
    """A choice that adds nothing to the answer but keeps data flowing."""
    return {"index": index, "delta": {"content": "", "annotations": []}, "logprobs": None,
            "finish_reason": None}


def summary_choice(report: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """A content-free choice carrying the self-critic summary in its delta."""
    choice = keepalive_choice(index)
    choice["delta"]["self_critic"] = report
    return choice
