"""`POST /v1/completions` (OpenAI's legacy completions), beside chat with the same
admission, deadline, cancellation and streaming."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from server.completions.protocol import CompletionRequest
from server.completions.serving import CompletionService
from server.edge.sse import event_stream
from server.load.cancellation import run_cancellable
from server.state import Authorized, State

router = APIRouter()


@router.post("/v1/completions", dependencies=[Authorized])
async def create_completion(body: CompletionRequest, request: Request, state: State) -> Any:
    await state.precheck()
    service = CompletionService(state.engine, state.settings, state.metrics,
                                state.sampling_defaults)
    # Tokenising blocks: never on the event loop
    prepared = await asyncio.to_thread(service.prepare, body)
    request_id = request.state.request_id
    release = await state.admit(prepared.cost)
    timeout_s = state.settings.request_timeout_s
    if body.stream:
        return event_stream(service.stream(prepared, request_id), release, timeout_s)
    try:
        return await run_cancellable(request, service.complete(prepared, request_id), timeout_s)
    finally:
        release()
