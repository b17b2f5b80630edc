"""Bad input is a 4xx in OpenAI's error shape, never a 500, and the server stays healthy."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from critic_loop.engine import (
    EngineError,
    GenerationRequest,
    InvalidRequestError,
    PromptTooLongError,
    SamplingOptions,
)
from critic_loop.runtime.engines.scripted import ScriptedEngine
from server.app import create_app
from server.settings import ServerSettings
from tests.support.failing_engine import failing_engine

MESSAGES = [{"role": "user", "content": "Hi"}]

BAD_CHAT_BODIES = [
    ({"model": "tiny"}, 400, "messages"),
    ({"model": "tiny", "messages": []}, 400, "messages"),
    ({"model": "tiny", "messages": "hello"}, 400, "messages"),
    ({"model": "tiny", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
    ({"model": "tiny", "messages": [{"role": "user",
                                     "content": [{"type": "audio", "x": 1}]}]}, 400, "content"),
    ({"model": "tiny", "messages": MESSAGES, "n": 0}, 400, "n"),
    ({"model": "tiny", "messages": MESSAGES, "n": 999}, 400, "n"),
    ({"model": "tiny", "messages": MESSAGES, "n": "two"}, 400, "n"),
    ({"model": "tiny", "messages": MESSAGES, "temperature": -1}, 400, "temperature"),
    ({"model": "tiny", "messages": MESSAGES, "top_p": 0}, 400, "top_p"),
    ({"model": "tiny", "messages": MESSAGES, "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "tiny", "messages": MESSAGES, "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": "tiny", "messages": MESSAGES, "top_logprobs": 3}, 400, "logprobs"),
    ({"model": "nope", "messages": MESSAGES}, 404, "model"),
    ({"model": "tiny", "messages": MESSAGES, "self_critic": {"judge": "psychic"}}, 400, "judge"),
    ({"model": "tiny", "messages": MESSAGES, "self_critic": {"comparisons": 0}}, 400,
     "comparisons"),
    ({"model": "tiny", "messages": MESSAGES, "self_critic": {"candidates": 999}}, 400,
     "candidates"),
    ({"model": "tiny", "messages": MESSAGES, "n": 5, "self_critic": {"candidates": 3}}, 400, "n"),
    ({"model": "tiny", "messages": MESSAGES, "self_critic": {"colour": "red"}}, 400, "colour"),
    ({"model": "tiny", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}, 400,
     "image"),
    # values vLLM refuses or crashes on are refused here, naming the field
    ({"model": "tiny", "messages": MESSAGES, "seed": 2**64 + 1}, 400, "seed"),
    ({"model": "tiny", "messages": MESSAGES, "seed": 2**63}, 400, "seed"),
    ({"model": "tiny", "messages": MESSAGES, "seed": -(2**63) - 1}, 400, "seed"),
    ({"model": "tiny", "messages": MESSAGES, "stop": ""}, 400, "stop"),
    ({"model": "tiny", "messages": MESSAGES, "stop": ["end", ""]}, 400, "stop"),
    ({"model": "tiny", "messages": MESSAGES, "temperature": float("nan")}, 400, "temperature"),
    ({"model": "tiny", "messages": MESSAGES, "top_p": float("inf")}, 400, "top_p"),
    ({"model": "tiny", "messages": [{"role": "user", "content": "a\ud800b"}]}, 400,
     "surrogate"),
    ({"model": "tiny", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "\udfff"}]}]}, 400, "messages.0.content.0.text"),
    ({"model": "tiny", "messages": MESSAGES, "stop": "\ud800"}, 400, "stop"),
]


def _assert_openai_error(response, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert needle.lower() in (error["message"] + str(error["param"])).lower(), error


def _post_raw(client, path: str, body: dict):
    """Python's own JSON encoder, which (unlike httpx's) writes NaN and lone surrogates."""
    return client.post(path, content=json.dumps(body),
                       headers={"content-type": "application/json"})


@pytest.mark.parametrize(("body", "status", "needle"), BAD_CHAT_BODIES)
def test_bad_chat_input(client, body, status, needle) -> None:
    _assert_openai_error(_post_raw(client, "/v1/chat/completions", body), status, needle)
    good = client.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES})
    assert good.status_code == 200
    assert client.get("/health").status_code == 200


def test_invalid_json(client) -> None:
    response = client.post("/v1/chat/completions", content=b"{not json",
                           headers={"content-type": "application/json"})
    _assert_openai_error(response, 400, "json")


def test_unknown_route_is_openai_404(client) -> None:
    _assert_openai_error(client.get("/v1/nothing"), 404, "route")


def test_prompt_filling_the_context(make_client) -> None:
    client = make_client(ScriptedEngine(model_name="tiny", max_model_len=64))
    long = [{"role": "user", "content": "word " * 100}]
    _assert_openai_error(client.post("/v1/chat/completions",
                                     json={"model": "tiny", "messages": long}), 400, "context")


BAD_CRITIQUES = [
    ({"question": "q", "responses": []}, "responses"),
    ({"question": "q", "responses": ["only one"]}, "responses"),
    ({"question": "q", "responses": ["a"] * 17}, "responses"),
    ({"question": "q", "responses": ["a", "b"], "judge": "psychic"}, "judge"),
    ({"question": "q", "responses": ["a", "b"], "comparisons": 0}, "comparisons"),
    ({"responses": ["a", "b"]}, "question"),
    ({"question": "q", "messages": MESSAGES, "responses": ["a", "b"]}, "question"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/cat.png"}},
        {"type": "text", "text": "what is this?"}]}], "responses": ["a", "b"]}, "image"),
    ({"question": "q", "responses": ["a", "b"], "seed": 2**64 + 1}, "seed"),
    ({"question": "q", "responses": ["a", "b\ud800"]}, "responses.1"),
    ({"question": "\ud800", "responses": ["a", "b"]}, "question"),
]


@pytest.mark.parametrize(("body", "needle"), BAD_CRITIQUES)
def test_bad_critique_input(client, body, needle) -> None:
    _assert_openai_error(_post_raw(client, "/v1/critique", body), 400, needle)


def test_critique_unknown_model(client) -> None:
    response = client.post("/v1/critique", json={"model": "x", "question": "q",
                                                 "responses": ["a", "b"]})
    _assert_openai_error(response, 404, "model")


@pytest.mark.parametrize(("extra", "param"), [
    ({"self_critic": {"judge": "psychic"}}, "self_critic.judge"),
    ({"self_critic": 5}, "self_critic"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages.0.content.0"),
    ({"stop": ["end", ""]}, "stop.1"),
])
def test_validation_errors_name_the_clients_field_not_our_classes(client, extra, param) -> None:
    error = client.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES,
                                                      **extra}).json()["error"]
    assert error["param"] == param
    for internal in ("SelfCriticOptions", "TextPart", "ImagePart", "tagged-union", ".bool",
                     ".str", "Value error"):
        assert internal not in error["message"], error["message"]


OPENAI_CONTEXT = re.compile(
    r"^This model's maximum context length is (\d+) tokens\. However, you requested (\d+) "
    r"tokens \((\d+) in the messages, (\d+) in the completion\)\. Please reduce the length "
    r"of the messages or completion\.")


def _assert_openai_context_error(response, context: int) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    match = OPENAI_CONTEXT.match(error["message"])
    assert match, error["message"]
    total, prompt, completion = (int(g) for g in match.groups()[1:])
    assert int(match.group(1)) == context and total == prompt + completion > context


def test_context_length_errors_use_openais_words(make_client) -> None:
    """Gateways (LiteLLM's context-window fallbacks) match OpenAI's sentence and code."""
    client = make_client(ScriptedEngine(model_name="tiny", max_model_len=64))
    long = [{"role": "user", "content": "word " * 100}]
    chat = {"model": "tiny", "messages": MESSAGES}
    _assert_openai_context_error(client.post("/v1/chat/completions", json={
        **chat, "messages": long}), 64)
    _assert_openai_context_error(client.post("/v1/chat/completions", json={
        **chat, "max_tokens": 100}), 64)
    _assert_openai_context_error(client.post("/v1/chat/completions", json={
        **chat, "max_tokens": 30, "self_critic": {"judge": "fast"}}), 64)
    _assert_openai_context_error(client.post("/v1/critique", json={
        "question": "q", "responses": ["word " * 40, "word " * 40], "judge": "fast"}), 64)


def test_engine_context_error_uses_openais_words() -> None:
    engine = ScriptedEngine(model_name="tiny", max_model_len=8)
    request = GenerationRequest("r", "one two three", SamplingOptions(max_tokens=6))
    with pytest.raises(PromptTooLongError) as caught:
        asyncio.run(engine.generate([request]))
    assert str(caught.value) == (
        "This model's maximum context length is 8 tokens. However, you requested 9 tokens "
        "(3 in the messages, 6 in the completion). Please reduce the length of the messages "
        "or completion.")


def test_a_500_carries_the_request_id_and_not_the_cause(make_client, caplog) -> None:
    client = make_client(failing_engine(RuntimeError("secret detail")))
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES},
                           headers={"X-Request-Id": "req-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"
    error = response.json()["error"]
    assert error["code"] == "internal_error" and "req-500" in error["message"]
    assert "secret" not in response.text
    assert any(r.exc_info for r in caplog.records)  # the traceback is ours to read


def test_a_503_does_not_echo_the_engines_words(make_client, caplog) -> None:
    client = make_client(failing_engine(EngineError("core dumped at /srv/x")))
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES})
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.json()["error"]["code"] == "engine_unavailable"
    assert "core dumped" not in response.text
    assert "core dumped" in caplog.text


def test_an_engine_refusal_is_a_400(make_client) -> None:
    client = make_client(failing_engine(InvalidRequestError("bad top_k", "top_k")))
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES})
    _assert_openai_error(response, 400, "top_k")


async def test_a_chunked_body_over_the_limit_is_a_413() -> None:
    app = create_app(ServerSettings(max_body_bytes=2048),
                     engine=ScriptedEngine(model_name="tiny"))
    async def chunks():
        yield b'{"model": "tiny", "messages": [{"role": "user", "content": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'"}]}'

    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://selfcritic") as client:
        before = _requests(app, "413")
        response = await client.post("/v1/chat/completions", content=chunks(),
                                     headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert _requests(app, "413") == before + 1


def _requests(app, status: str) -> float:
    """The requests to chat with `status` that `app` counted."""
    return app.state.selfcritic.metrics.registry.get_sample_value("selfcritic_requests_total", {
        "endpoint": "/v1/chat/completions", "status": status}) or 0.0
