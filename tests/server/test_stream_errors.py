"""Every failure in a stream ends it with an OpenAI-shaped error event and `[DONE]`,
never a cut connection; the event tells the client what a JSON answer would have."""

from __future__ import annotations

import json

import pytest

from critic_loop.engine import (
    EngineError,
    InvalidRequestError,
    PromptTooLongError,
)
from tests.support.failing_engine import failing_engine

BODY = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def _events(text: str) -> list[str]:
    return [line.removeprefix("data: ") for line in text.split("\n\n")
            if line.startswith("data: ")]


@pytest.mark.parametrize("self_critic", [None, {"candidates": 2}])
@pytest.mark.parametrize(("exc", "status", "code", "secret"), [
    (RuntimeError("secret bug"), 500, "internal_error", "secret"),
    (EngineError("secret engine detail"), 503, "engine_unavailable", "secret"),
    (PromptTooLongError("This model's maximum context length is 8 tokens."), 400,
     "context_length_exceeded", None),
    (InvalidRequestError("top_k must be at least 1", "top_k"), 400, "invalid_value", None),
])
def test_a_failing_stream_ends_with_an_error_event_and_done(make_client, self_critic, exc,
                                                           status, code, secret) -> None:
    client = make_client(failing_engine(exc))
    body = {**BODY, "self_critic": self_critic} if self_critic else BODY
    response = client.post("/v1/chat/completions", json=body,
                           headers={"X-Request-Id": "req-s1"})
    assert response.status_code == 200  # the stream had started
    events = _events(response.text)
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["type"] == {500: "server_error", 503: "service_unavailable",
                             400: "invalid_request_error"}[status]
    if status == 500:
        assert "req-s1" in error["message"]
    if secret:
        assert secret not in response.text
    assert client.get("/health").status_code == 200
