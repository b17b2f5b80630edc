"""Hostile and edge-case input against the real vLLM engine: what vLLM refuses or crashed
on is a 400 naming the field (also when streamed), near-zero temperatures with n > 1 work,
a client that leaves is a 499 with no traceback, and the server keeps answering."""

from __future__ import annotations

import contextlib
import json
import time

import httpx
import pytest

from tests.support.live_server import API_KEY, MODEL

AUTH = {"Authorization": f"Bearer {API_KEY}"}
QUESTION = [{"role": "user", "content": "Name a colour."}]


def _post(server, body: dict, timeout: float = 120) -> httpx.Response:
    return httpx.post(server.url + "/v1/chat/completions", headers=AUTH, timeout=timeout,
                      json={"model": MODEL, "messages": QUESTION, "max_tokens": 8, **body})


def _stream_events(server, body: dict) -> tuple[int, list[str]]:
    with httpx.stream("POST", server.url + "/v1/chat/completions", headers=AUTH, timeout=120,
                      json={"model": MODEL, "messages": QUESTION, "max_tokens": 8,
                            "stream": True, **body}) as response:
        lines = [line for line in response.iter_lines() if line]
    if response.status_code != 200:
        return response.status_code, lines
    return 200, [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


def _assert_still_serving(server) -> None:
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    assert _post(server, {"temperature": 0}).status_code == 200


@pytest.mark.parametrize(("field", "value"), [("seed", 2**64 + 1), ("stop", ""),
                                              ("stop", ["\n\n", ""])])
@pytest.mark.parametrize("stream", [False, True])
def test_values_vllm_refuses_are_a_400_naming_the_field(server, field, value, stream) -> None:
    if stream:
        status, lines = _stream_events(server, {field: value})
        body = json.loads("".join(lines))
    else:
        response = _post(server, {field: value})
        status, body = response.status_code, response.json()
    assert status == 400, body
    assert body["error"]["param"].split(".")[0] == field
    _assert_still_serving(server)


def test_the_largest_seed_is_served(server) -> None:
    response = _post(server, {"seed": 2**63 - 1, "n": 2, "temperature": 1.0})
    assert response.status_code == 200, response.text
    _assert_still_serving(server)


def test_near_zero_temperature_with_n_above_one(server) -> None:
    """vLLM treats temperatures under 1e-5 as greedy, where it refuses n > 1."""
    response = _post(server, {"temperature": 1e-6, "n": 2})
    assert response.status_code == 200, response.text
    assert [c["index"] for c in response.json()["choices"]] == [0, 1]
    status, events = _stream_events(server, {"temperature": 1e-6, "n": 2})
    assert status == 200 and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert not [c for c in chunks if "error" in c]
    assert {choice["index"] for c in chunks for choice in c["choices"]} == {0, 1}
    _assert_still_serving(server)


def _requests_499(server) -> float:
    text = httpx.get(server.url + "/metrics", headers=AUTH, timeout=10).text
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.startswith("selfcritic_requests_total{") and 'status="499"' in line)


def _await_499s(server, count: float, timeout_s: float = 120) -> float:
    """The 499 count once it reaches `count`, or what it is at the deadline: the server
    notices a client left only when it next listens or writes, after the client is gone."""
    deadline = time.monotonic() + timeout_s
    while (seen := _requests_499(server)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return seen


LONG = {"max_tokens": 900, "ignore_eos": True}
"""Work no machine finishes within the client's 1 s patience: 900 tokens a sample (as many
as a 2-candidate self-critic judgment leaves room for in the 2048-token context)."""


def test_a_client_that_leaves_is_a_499_without_a_traceback(server) -> None:
    before, log_before = _requests_499(server), len(server.log())
    with contextlib.suppress(httpx.TimeoutException):  # the client gives up and leaves
        _post(server, {**LONG, "n": 2}, timeout=1.0)
    _leave_a_stream(server)
    assert _await_499s(server, before + 2) == before + 2
    _assert_still_serving(server)
    assert "Traceback" not in server.log()[log_before:]


def _leave_a_stream(server) -> None:
    """Open a self-critic stream, take its headers, and hang up: the client leaves on its
    own terms, not when a read times out (keep-alive chunks would hold a read open)."""
    with httpx.stream("POST", server.url + "/v1/chat/completions", headers=AUTH, timeout=120,
                      json={"model": MODEL, "messages": QUESTION, **LONG,
                            "stream": True, "self_critic": {"candidates": 2}}) as response:
        assert response.status_code == 200, response.read()
