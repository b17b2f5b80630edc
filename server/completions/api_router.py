"""`POST /v1/completions` (OpenAI's legacy completions), beside chat with the same
lifecycle: admission, deadline, cancellation and streaming."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.completions.protocol import CompletionRequest
from server.state import State

router = APIRouter()


@router.post("/v1/completions")
async def create_completion(body: CompletionRequest, request: Request, state: State) -> Any:
    return await state.completions.handle(body, request)
