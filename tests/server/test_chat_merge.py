"""`self_critic.merge` through the app: answer-aware selection, its server default, its
metric, and bad values as OpenAI-shaped 400s."""

from __future__ import annotations

import pytest

from critic_loop.engine import GenerationRequest
from critic_loop.engines.scripted import ScriptedEngine
from tests.knockout import KNOCKOUT

MESSAGES = [{"role": "user", "content": "What is 6 × 7?"}]
CANDIDATES = ["6 × 7 = 42", "It is 42.", "I think 41", "6 times 7 is 42"]


def responder(request: GenerationRequest, index: int) -> str:
    """Candidates as above; the fast judge prefers whichever response says 42."""
    if not request.sampling.choices:
        return CANDIDATES[index]
    first = request.prompt.split("[Response 1]\n", 1)[1].split("[Response 2]", 1)[0]
    return "1" if "42" in first else "2"


def test_merge_answer_judges_each_distinct_answer_once(make_client) -> None:
    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    response = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "n": 4, "seed": 1,
        "self_critic": {**KNOCKOUT, "candidates": 4, "judge": "fast", "merge": "answer",
                        "return_trace": True}})
    assert response.status_code == 200, response.text
    body = response.json()
    report = body["self_critic"]
    assert (report["merge"], report["entrants"], report["judge_calls"]) == ("answer", 2, 2)
    assert report["judge_calls_saved"] == (4 - 1) * 2 - 2
    # The 42s first (their representative, then the others by index), then the 41.
    assert [c["message"]["content"] for c in body["choices"]] == [
        CANDIDATES[0], CANDIDATES[1], CANDIDATES[3], CANDIDATES[2]]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert report["trace"]["entrants"] == [
        {"answer": "42", "representative": 0, "members": [0, 1, 3], "truncated": False},
        {"answer": "41", "representative": 2, "members": [2], "truncated": False}]
    metrics = client.get("/metrics").text
    assert 'selfcritic_judge_calls_saved_total{mode="fast"}' in metrics


def test_server_default_merge_and_its_pipelined_fallback(make_client) -> None:
    client = make_client(ScriptedEngine(responder, model_name="tiny"), merge="answer",
                         select="knockout", include_greedy=False)
    report = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "self_critic": True}).json()["self_critic"]
    # The server's default schedule is pipelined; answer merging ran it as rounds.
    assert report["merge"] == "answer" and report["schedule"] == "rounds"
    assert "pipelined" in report["notes"][0]
    overridden = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES,
        "self_critic": {**KNOCKOUT, "merge": "text"}}).json()["self_critic"]
    assert overridden["merge"] == "text" and overridden["judge_calls_saved"] == 0


@pytest.mark.parametrize(("options", "needles"), [
    ({"merge": "votes"}, ["merge", "'text'", "'answer'"]),
    ({"answer_format": "latex"}, ["answer_format", "'auto'", "'choice'"]),
    ({"merge": "answer", "answer_pattern": "(unclosed"}, ["answer_pattern", "regular expression"]),
])
def test_bad_merge_options_are_400s_naming_what_is_allowed(client, options, needles) -> None:
    response = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "self_critic": options})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    for needle in needles:
        assert needle in error["message"] + str(error["param"]), error
    assert client.get("/health").status_code == 200
