"""Server unit tests: the real app on a scripted engine, driven through Starlette's client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

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
