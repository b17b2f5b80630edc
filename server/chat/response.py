"""Chat completion responses and stream chunks in OpenAI's shape."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from critic_loop.engine import Completion, TokenLogprob
from server.edge.sse import sse_event
from server.protocol.finish_reason import finish_reason
from server.protocol.usage import Usage


def logprobs_content(logprobs: Sequence[TokenLogprob] | None) -> dict[str, Any] | None:
    if logprobs is None:
        return None
    return {"content": [
        {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.token.encode()),
         "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())}
                          for t, v in lp.top]}
        for lp in logprobs
    ], "refusal": None}


def chat_completion(completion_id: str, model: str, choices: Sequence[Completion],
                    usage: Usage, created: int | None = None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `chat.completion` object; `choices` are given in the order they are returned."""
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [
            {"index": i,
             "message": {"role": "assistant", "content": c.text, "refusal": None},
             "logprobs": logprobs_content(c.logprobs),
             "finish_reason": finish_reason(c.finish_reason)}
            for i, c in enumerate(choices)
        ],
        "usage": usage.as_dict(),
        "system_fingerprint": None,
    }
    if extra:
        body.update(extra)
    return body


def chunk(completion_id: str, model: str, created: int, choices: list[dict[str, Any]],
          usage: Usage | None = None, extra: dict[str, Any] | None = None) -> str:
    """One SSE `data:` line holding a `chat.completion.chunk`."""
    body: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk",
                            "created": created, "model": model, "choices": choices,
                            "system_fingerprint": None}
    if usage is not None:
        body["usage"] = usage.as_dict()
    if extra:
        body.update(extra)
    return sse_event(body)


def delta_choice(index: int, text: str | None = None, role: str | None = None,
                 finish: str | None = None,
                 logprobs: Sequence[TokenLogprob] | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if text is not None:
        delta["content"] = text
    return {"index": index, "delta": delta, "logprobs": logprobs_content(logprobs),
            "finish_reason": finish_reason(finish) if finish else None}
