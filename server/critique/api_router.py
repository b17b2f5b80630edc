"""`POST /v1/critique` (alias `/critique`): the pairwise judge as a service."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from server.critique.protocol import CritiqueRequest
from server.load.cancellation import run_cancellable
from server.state import Authorized, State

router = APIRouter()


@router.post("/v1/critique", dependencies=[Authorized])
@router.post("/critique", dependencies=[Authorized], include_in_schema=False)
async def create_critique(body: CritiqueRequest, request: Request, state: State) -> Any:
    critique = state.critique.plan(body)
    # Admitted on its cost before templating and before any image is fetched (up to
    # --media-fetch-timeout-s), so under overload a refusal costs neither
    release = await state.admit(critique.cost)
    try:
        # Templating and tokenising block for up to a second: never on the event loop
        critique = await state.critique.load_images(
            await asyncio.to_thread(state.critique.prepare, critique))
        return await run_cancellable(
            request, state.critique.run(critique, request.state.request_id),
            state.settings.request_timeout_s)
    finally:
        release()
