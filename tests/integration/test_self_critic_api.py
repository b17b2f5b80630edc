"""Self-critic and /v1/critique on the real engine, through the openai client and httpx."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.support.knockout import KNOCKOUT
from tests.support.live_server import API_KEY, MODEL

QUESTION = [{"role": "user", "content": "What is 12 + 7? Answer with the number."}]
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_self_critic_through_extra_body(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=24, n=2, seed=5,
        extra_body={"self_critic": {**KNOCKOUT, "candidates": 4, "judge": "fast", "return_trace": True}})
    assert len(completion.choices) == 2
    report = completion.model_extra["self_critic"]
    assert report["candidates"] == 4 and report["rounds"] >= 1
    assert report["judge_calls"] <= 3 * 2
    trace = report["trace"]
    texts = [c["text"] for c in trace["candidates"]]
    assert completion.choices[0].message.content in texts
    usage = report["usage"]
    assert completion.usage.total_tokens == usage["total"]["total_tokens"]
    assert usage["judge"]["prompt_tokens"] > 0


def test_self_critic_through_model_alias(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=f"{MODEL}:self-critic",
                                                messages=QUESTION, max_tokens=16)
    assert completion.choices[0].message.content
    assert completion.model_extra["self_critic"]["candidates"] >= 2


def test_self_critic_reason_mode(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=16, seed=1,
        extra_body={"self_critic": {**KNOCKOUT, "candidates": 2, "judge": "reason",
                                    "judge_max_tokens": 48, "return_trace": True}})
    report = completion.model_extra["self_critic"]
    assert report["judge"] == "reason"
    matches = [m for r in report["trace"]["rounds"] for m in r["matches"]]
    judgments = [j for m in matches for j in m["judgments"]]
    # Whatever the small model writes in 48 tokens, every judgment ends in a verdict: its
    # own, or the digit read after its reasoning was closed and a box opened.
    assert report["invalid_votes"] == 0 and all(j["verdict"] is not None for j in judgments)
    forced = [j for j in judgments if j.get("forced")]
    assert all(j["probabilities"] is not None for j in forced)
    if matches:
        assert report["order_agreement"]["judged"] <= len(matches)


def test_self_critic_streaming(server) -> None:
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 16, "stream": True,
            "stream_options": {"include_usage": True},
            "self_critic": {"candidates": 3, "judge": "fast"}}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=AUTH,
                      timeout=300) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    content = "".join(c["delta"].get("content") or "" for d in data for c in d["choices"])
    assert content
    assert data[-1]["self_critic"]["candidates"] == 3
    assert data[-1]["usage"]["total_tokens"] > 0


def test_self_critic_streaming_with_openai_client(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=16, stream=True,
        extra_body={"self_critic": {"candidates": 2, "judge": "fast"}}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_critique_pair(server) -> None:
    response = httpx.post(server.url + "/v1/critique", headers=AUTH, timeout=300, json={
        "model": MODEL, "question": "What is the capital of France?",
        "responses": ["The capital of France is Paris.", "The capital of France is Berlin."],
        "judge": "fast", "comparisons": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "critique" and body["model"] == MODEL
    assert body["winner"] in (0, 1, None)
    assert sorted(body["ranking"]) == [0, 1]
    assert sum(body["preference"]) == pytest.approx(1.0, abs=1e-6)
    assert [j["order"] for j in body["judgments"]] == [[0, 1], [1, 0]]
    for judgment in body["judgments"]:
        probabilities = judgment["probabilities"]
        assert len(probabilities) == 2 and sum(probabilities) == pytest.approx(1.0)
    assert body["usage"]["prompt_tokens"] > 0


def test_critique_alias_reason_mode(server) -> None:
    response = httpx.post(server.url + "/critique", headers=AUTH, timeout=300, json={
        "messages": [{"role": "user", "content": "Is 7 prime?"}],
        "responses": ["Yes, 7 is prime.", "No, 7 = 2 x 3."],
        "judge": "reason", "max_tokens": 48, "seed": 3})
    assert response.status_code == 200, response.text
    for judgment in response.json()["judgments"]:
        assert judgment["text"] is not None


def test_critique_ranks_more_than_two(server) -> None:
    responses = ["4", "The answer is 4.", "5", "2 + 2 = 4", "fish"]
    response = httpx.post(server.url + "/v1/critique", headers=AUTH, timeout=300, json={
        "question": "What is 2 + 2?", "responses": responses, "judge": "fast", "seed": 0})
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body["ranking"]) == list(range(5))
    assert len(body["preference"]) == 5
    assert len(body["judgments"]) <= (5 - 1) * 2


@pytest.mark.parametrize(("body", "needle"), [
    ({"question": "q", "responses": []}, "responses"),
    ({"question": "q", "responses": ["one"]}, "responses"),
    ({"question": "q", "responses": [f"r{i}" for i in range(40)]}, "responses"),
    ({"question": "q", "responses": ["a", "b"], "judge": "oracle"}, "judge"),
    ({"question": "q", "responses": ["a", "b"], "comparisons": 0}, "comparisons"),
])
def test_critique_bad_input(server, body, needle) -> None:
    response = httpx.post(server.url + "/v1/critique", headers=AUTH, json=body, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert needle in (error["message"] + str(error["param"]))
    assert httpx.get(server.url + "/health").status_code == 200


def test_critique_command_against_the_server(server) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "selfcritic", "critique", "--question", "What is 2 + 2?",
         "--response", "4", "--response", "5", "--judge", "fast", "--url", server.url,
         "--api-key", API_KEY], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["object"] == "critique" and sorted(body["ranking"]) == [0, 1]
