"""Server-sent events: a deadline, errors as a final event, and the admission ticket
released however the stream ends (finished, failed or the client gone)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

from fastapi.responses import StreamingResponse

from critic_loop.engine import EngineError
from server.cancellation import deadline_error
from server.errors import APIError, error_body
from server.protocol.chat_response import DONE

logger = logging.getLogger(__name__)


def event_stream(lines: AsyncIterator[str], release: Callable[[], None],
                 timeout_s: float) -> StreamingResponse:
    return StreamingResponse(
        _guarded(lines, release, timeout_s), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _guarded(lines: AsyncIterator[str], release: Callable[[], None],
                   timeout_s: float) -> AsyncIterator[str]:
    try:
        async with asyncio.timeout(timeout_s):
            async for line in lines:
                yield line
    except TimeoutError:
        yield _error_event(deadline_error(timeout_s))
    except APIError as exc:
        yield _error_event(exc)
    except EngineError as exc:
        logger.error("engine failed mid-stream: %s", exc)
        yield _error_event(APIError(503, f"The engine is unavailable: {exc}"))
    finally:
        release()


def _error_event(exc: APIError) -> str:
    body = error_body(exc.status, exc.message, exc.param, exc.code)
    return f"data: {json.dumps(body)}\n\n{DONE}"
