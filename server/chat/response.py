"""Chat completion responses and stream chunks in OpenAI's shape."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from critic_loop.engine import Completion, TokenLogprob
from server.edge.sse import sse_event
from server.protocol.answers import Usage, answer_object, finish_reason


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
    return answer_object("chat.completion", completion_id, model, created or int(time.time()), [
        {"index": i,
         "message": {"role": "assistant", "content": c.text, "refusal": None},
         "logprobs": logprobs_content(c.logprobs),
         "finish_reason": finish_reason(c.finish_reason)}
        for i, c in enumerate(choices)], usage, extra)


def chunk(completion_id: str, model: str, created: int, choices: list[dict[str, Any]],
          usage: Usage | None = None, extra: dict[str, Any] | None = None) -> str:
    """One SSE `data:` line holding a `chat.completion.chunk`."""
    return sse_event(answer_object("chat.completion.chunk", completion_id, model, created,
                                   choices, usage, extra))


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
