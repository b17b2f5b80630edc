"""`POST /v1/chat/completions`."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from server.chat.protocol import ChatCompletionRequest
from server.edge.sse import event_stream
from server.load.cancellation import run_cancellable
from server.state import Authorized, State

router = APIRouter()


@router.post("/v1/chat/completions", dependencies=[Authorized])
async def create_chat_completion(body: ChatCompletionRequest, request: Request,
                                 state: State) -> Any:
    # Admitted on an estimate before templating, so that under overload a refusal costs
    # no worker-thread hop (the estimate's max_tokens can only shrink once templated)
    release = await state.admit(state.chat.estimated_cost(body))
    try:
        # Templating and tokenising block for up to a second: never on the event loop
        chat = await state.chat.load_images(await asyncio.to_thread(state.chat.prepare, body))
    except BaseException:
        release()
        raise
    request_id = request.state.request_id
    timeout_s = state.settings.request_timeout_s
    if body.stream:
        return event_stream(state.chat.stream(chat, request_id), release, timeout_s)
    try:
        return await run_cancellable(request, state.chat.complete(chat, request_id), timeout_s)
    finally:
        release()
