"""Bad input is a 4xx in OpenAI's error shape, never a 500, and the server stays healthy."""

from __future__ import annotations

import pytest

from critic_loop.engines.scripted import ScriptedEngine

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
]


def _assert_openai_error(response, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert needle.lower() in (error["message"] + str(error["param"])).lower(), error


@pytest.mark.parametrize(("body", "status", "needle"), BAD_CHAT_BODIES)
def test_bad_chat_input(client, body, status, needle) -> None:
    _assert_openai_error(client.post("/v1/chat/completions", json=body), status, needle)
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
]


@pytest.mark.parametrize(("body", "needle"), BAD_CRITIQUES)
def test_bad_critique_input(client, body, needle) -> None:
    _assert_openai_error(client.post("/v1/critique", json=body), 400, needle)


def test_critique_unknown_model(client) -> None:
    response = client.post("/v1/critique", json={"model": "x", "question": "q",
                                                 "responses": ["a", "b"]})
    _assert_openai_error(response, 404, "model")
