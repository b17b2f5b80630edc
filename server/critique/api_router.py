"""`POST /v1/critique` (alias `/critique`): the pairwise judge as a service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.critique.protocol import CritiqueRequest
from server.state import State

router = APIRouter()


@router.post("/v1/critique")
@router.post("/critique", include_in_schema=False)
async def create_critique(body: CritiqueRequest, request: Request, state: State) -> Any:
    return await state.critique.handle(body, request)
