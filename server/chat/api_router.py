"""`POST /v1/chat/completions`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.chat.protocol import ChatCompletionRequest
from server.state import State

router = APIRouter()


@router.post("/v1/chat/completions")
async def create_chat_completion(body: ChatCompletionRequest, request: Request,
                                 state: State) -> Any:
    return await state.chat.handle(body, request)
