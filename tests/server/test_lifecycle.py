"""Every POST endpoint runs one lifecycle, in one order (`server.serving.base`): validated,
admitted on an estimate before any templating or tokenising, prepared, its images fetched
once admitted, run, and released on every exit: an answer, an error after admission, a
client that left."""

from __future__ import annotations

import asyncio
import json

import pytest

from critic_loop.runtime.engines.scripted import ScriptedEngine, echo_responder
from server.app import create_app
from server.media import images
from server.settings import ServerSettings
from tests.support.image_fixtures import encoded

IMAGE_URL = "http://images.test/cat.png"
SETTINGS = {"allowed_media_domains": "images.test", "request_timeout_s": 30}


class Steps(ScriptedEngine):
    """A scripted engine that notes, in order, the first time each step happens."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(echo_responder, model_name="tiny", supports_images=True, **kwargs)
        self.steps: list[str] = []
        self.working = asyncio.Event()
        """Set once the engine has work."""

    def note(self, step: str) -> None:
        if step not in self.steps:
            self.steps.append(step)
        if step == "engine":
            self.working.set()

    def render_prompt(self, messages, tools=None):
        self.note("prepared")
        return super().render_prompt(messages, tools)

    def count_tokens(self, text, images=()):
        self.note("prepared")
        return super().count_tokens(text, images)

    def count_text_tokens(self, texts):
        self.note("prepared")
        return super().count_text_tokens(texts)

    async def generate(self, requests):
        self.note("engine")
        return await super().generate(requests)

    def stream(self, request):
        self.note("engine")
        return super().stream(request)


def spy_on(state, engine: Steps, monkeypatch: pytest.MonkeyPatch) -> None:
    """Note admission, release and every image fetch among the engine's steps."""
    acquire = state.admission.acquire

    def admitted(cost):
        release = acquire(cost)
        engine.note("admitted")

        def released() -> None:
            engine.note("released")
            release()

        return released

    async def fetched(url: str, allow: object, max_bytes: int) -> bytes:
        engine.note("fetched")
        return encoded("red")

    monkeypatch.setattr(state.admission, "acquire", admitted)
    monkeypatch.setattr(images, "fetch_image_bytes", fetched)


def with_image(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE_URL}},
                                         {"type": "text", "text": text}]}]


QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]
REQUESTS = {
    "chat": ("/v1/chat/completions", {"model": "tiny", "messages": QUESTION, "max_tokens": 8}),
    "chat streamed": ("/v1/chat/completions", {"model": "tiny", "messages": QUESTION,
                                               "max_tokens": 8, "stream": True}),
    "self-critic": ("/v1/chat/completions", {"model": "tiny", "messages": QUESTION,
                                             "max_tokens": 8,
                                             "self_critic": {"candidates": 2}}),
    "completions": ("/v1/completions", {"model": "tiny", "prompt": "2 + 2 =", "max_tokens": 8}),
    "completions streamed": ("/v1/completions", {"model": "tiny", "prompt": "2 + 2 =",
                                                 "max_tokens": 8, "stream": True}),
    "critique": ("/v1/critique", {"question": "2 + 2?", "responses": ["4", "5"],
                                  "judge": "fast"}),
}
WITH_IMAGES = {
    "chat": ("/v1/chat/completions", {"model": "tiny", "messages": with_image("Colour?"),
                                      "max_tokens": 8}),
    "self-critic": ("/v1/chat/completions", {"model": "tiny", "messages": with_image("Colour?"),
                                             "max_tokens": 8,
                                             "self_critic": {"candidates": 2}}),
    "critique": ("/v1/critique", {"question": "Colour?", "images": [IMAGE_URL],
                                  "responses": ["red", "blue"], "judge": "fast"}),
}
FAILING_AFTER_ADMISSION = {  # each passes validation, then fails while prepared
    "chat": ("/v1/chat/completions", {"model": "tiny", "messages": QUESTION,
                                      "max_tokens": 5000}),
    "completions": ("/v1/completions", {"model": "tiny", "prompt": "2 + 2 =",
                                        "max_tokens": 5000}),
    "critique": ("/v1/critique", {"question": "2 + 2?", "judge": "fast",
                                  "responses": ["four " * 1500, "five " * 1500]}),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_admitted_before_anything_is_prepared_and_released_after(make_client, monkeypatch,
                                                                 name) -> None:
    engine = Steps()
    client = make_client(engine, **SETTINGS)
    spy_on(client.app.state.selfcritic, engine, monkeypatch)
    path, body = REQUESTS[name]
    assert client.post(path, json=body).status_code == 200
    assert engine.steps == ["admitted", "prepared", "engine", "released"]


@pytest.mark.parametrize("name", list(WITH_IMAGES))
def test_images_are_fetched_once_admitted_and_prepared(make_client, monkeypatch, name) -> None:
    engine = Steps()
    client = make_client(engine, **SETTINGS)
    spy_on(client.app.state.selfcritic, engine, monkeypatch)
    path, body = WITH_IMAGES[name]
    reply = client.post(path, json=body)
    assert reply.status_code == 200, reply.text
    assert engine.steps == ["admitted", "prepared", "fetched", "engine", "released"]


@pytest.mark.parametrize("name", list(FAILING_AFTER_ADMISSION))
def test_an_error_after_admission_releases_it(make_client, monkeypatch, name) -> None:
    engine = Steps()
    client = make_client(engine, **SETTINGS)
    state = client.app.state.selfcritic
    spy_on(state, engine, monkeypatch)
    path, body = FAILING_AFTER_ADMISSION[name]
    reply = client.post(path, json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "context_length_exceeded"
    assert engine.steps == ["admitted", "prepared", "released"]
    assert state.admission.capacity.in_flight_sequences == 0


@pytest.mark.parametrize("name", list(FAILING_AFTER_ADMISSION))
def test_bad_input_is_refused_before_admission(make_client, monkeypatch, name) -> None:
    engine = Steps()
    client = make_client(engine, **SETTINGS)
    spy_on(client.app.state.selfcritic, engine, monkeypatch)
    path, body = FAILING_AFTER_ADMISSION[name]
    reply = client.post(path, json={**body, "model": "other"})
    assert reply.status_code == 404, reply.text
    assert engine.steps == []


async def _post_and_leave(app, path: str, body: dict, engine: Steps) -> None:
    """POST `body` over raw ASGI, then disconnect once the engine has its work."""
    raw = json.dumps(body).encode()
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await engine.working.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        pass

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "client": ("127.0.0.1", 5000), "server": ("selfcritic", 80),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(raw)).encode())]}
    await app(scope, receive, send)


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_a_client_that_leaves_releases_its_admission(monkeypatch, name) -> None:
    engine = Steps(token_delay_s=5)  # still at work when the client leaves
    app = create_app(ServerSettings(keepalive_interval_s=0.05, **SETTINGS), engine=engine)
    async with app.router.lifespan_context(app):
        state = app.state.selfcritic
        spy_on(state, engine, monkeypatch)
        path, body = REQUESTS[name]
        await _post_and_leave(app, path, body, engine)
        assert engine.steps == ["admitted", "prepared", "engine", "released"]
        assert state.admission.capacity.in_flight_sequences == 0
        assert engine.aborted and not engine.running
