"""A client that goes away is not an error: no traceback, status 499 in the metrics, and
its engine work aborted. Driven through raw ASGI so the disconnect comes when we say."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from critic_loop.engines.scripted import ScriptedEngine
from server.app import create_app
from server.settings import ServerSettings

BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}


def _requests(app, status: str) -> float:
    """The requests to chat with `status` that `app` counted."""
    return app.state.selfcritic.metrics.registry.get_sample_value("selfcritic_requests_total", {
        "endpoint": "/v1/chat/completions", "status": status}) or 0.0


async def _leave_after(app, body: dict, seconds: float) -> list[dict]:
    """POST `body`, then disconnect after `seconds`; return what the app sent."""
    raw = json.dumps(body).encode()
    sent: list[dict] = []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.sleep(seconds)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "root_path": "", "query_string": b"", "client": ("127.0.0.1", 5000),
             "server": ("selfcritic", 80),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(raw)).encode())]}
    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize("extra", [
    {}, {"stream": True}, {"self_critic": {"candidates": 2}},
    {"stream": True, "self_critic": {"candidates": 2}}])
async def test_a_client_that_leaves_is_counted_499_without_a_traceback(extra, caplog) -> None:
    engine = ScriptedEngine(model_name="tiny", token_delay_s=0.2)
    app = create_app(ServerSettings(keepalive_interval_s=0.05), engine=engine)
    caplog.set_level(logging.INFO)
    async with app.router.lifespan_context(app):
        before = {status: _requests(app, status) for status in ("200", "499", "500")}
        await _leave_after(app, {**BODY, **extra}, seconds=0.1)
    assert _requests(app, "499") == before["499"] + 1
    assert _requests(app, "500") == before["500"] and _requests(app, "200") == before["200"]
    assert engine.aborted and not engine.running
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
