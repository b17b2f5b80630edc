"""Tie engine work to the HTTP request: a client that goes away, or a deadline that
passes, cancels the task, and cancelling it aborts every engine request it started.

Streaming responses get this from Starlette (it cancels the body iterator on
disconnect); non-streaming handlers need `run_cancellable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from server.edge.errors import APIError

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before the response was ready."""


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def run_cancellable(request: Request, work: Awaitable[T], timeout_s: float) -> T:
    """Await `work`; cancel it if the client disconnects (then raise `ClientDisconnected`)
    or if `timeout_s` passes (then raise a 504)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)  # let the aborts run before we answer
    if watcher in done:
        raise ClientDisconnected()
    raise deadline_error(timeout_s)


def deadline_error(timeout_s: float) -> APIError:
    return APIError(504, f"The request did not finish within its deadline of {timeout_s:g} s; "
                    "its engine work was aborted. Ask for fewer tokens or candidates.",
                    code="deadline_exceeded")
