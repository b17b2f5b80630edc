"""Server-sent events, framed in one place: each event a `data:` line of JSON, `[DONE]`
last; a deadline, any error as a final OpenAI-shaped event then `[DONE]`, and the
admission ticket released however the stream ends (finished, failed or the client gone)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from server.edge.errors import APIError, api_error_for, error_body
from server.edge.middleware import request_id_var
from server.load.cancellation import deadline_error

DONE = "data: [DONE]\n\n"
"""The last event of every stream."""


def sse_event(body: dict[str, Any]) -> str:
    """One SSE `data:` event holding `body` as JSON."""
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def event_stream(lines: AsyncIterator[str], release: Callable[[], None],
                 timeout_s: float) -> StreamingResponse:
    return StreamingResponse(
        _guarded(lines, release, timeout_s), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _guarded(lines: AsyncIterator[str], release: Callable[[], None],
                   timeout_s: float) -> AsyncIterator[str]:
    """Every failure ends the stream with an OpenAI-shaped error event and `[DONE]`; a
    client that left is not a failure (the cancellation just passes through)."""
    try:
        async with asyncio.timeout(timeout_s):
            async for line in lines:
                yield line
    except TimeoutError:
        yield _error_event(deadline_error(timeout_s))
    except Exception as exc:
        yield _error_event(api_error_for(exc, request_id_var.get()))
    finally:
        release()


def _error_event(exc: APIError) -> str:
    return sse_event(error_body(exc.status, exc.message, exc.param, exc.code)) + DONE
