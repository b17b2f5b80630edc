"""Server unit tests: the real app on a scripted engine, driven through Starlette's client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from critic_loop.engines.scripted import ScriptedEngine, echo_responder
from server.app import create_app
from server.settings import ServerSettings

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """Build an app around a scripted engine with some settings; closed after the test."""
    clients: list[TestClient] = []

    def make(engine: ScriptedEngine | None = None, **settings: object) -> TestClient:
        engine = engine or ScriptedEngine(echo_responder, model_name="tiny")
        app = create_app(ServerSettings(**settings), engine=engine)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        client.engine = engine  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture
async def make_async_client() -> AsyncIterator:
    """Like `make_client`, but async (httpx over ASGI), for tests that overlap requests."""
    stack = contextlib.AsyncExitStack()

    async def make(engine: ScriptedEngine, on_engine_death=None, **settings: object):
        app = create_app(ServerSettings(**settings), engine=engine,
                         on_engine_death=on_engine_death)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://selfcritic")
        client.app = app  # type: ignore[attr-defined]  # its metrics, for instance
        return await stack.enter_async_context(client)

    yield make
    await stack.aclose()
