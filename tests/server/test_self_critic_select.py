"""`self_critic.select`, `include_greedy` and `judge_weight` over HTTP on the scripted engine:
they reach the run, the response stays OpenAI's shape, and a bad value is a 400."""

from __future__ import annotations

import pytest
from openai.types.chat import ChatCompletion

from critic_loop.engine import Completion, GenerationRequest, TokenLogprob
from critic_loop.runtime.engines.scripted import ScriptedEngine

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]
ANSWERS = ["it is 5", "it is 4", "it is 4", "it is 6"]


def responder(request: GenerationRequest, index: int) -> str | Completion:
    """Candidates from ANSWERS (the greedy one says 4), with top-k logprobs when asked;
    the fast judge always says "1"."""
    if request.sampling.choices:
        return "1"
    text = "greedy: it is 4" if request.sampling.temperature == 0 else ANSWERS[index]
    k = request.sampling.logprobs
    logprobs = None if k is None else tuple(
        TokenLogprob(w, -0.3, tuple((f"a{j}", -0.3 - j) for j in range(k)))
        for w in text.split())
    return Completion(index, text, len(text.split()), "stop", logprobs=logprobs)


def post(client, **self_critic: object):
    return client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "temperature": 0.7,
        "self_critic": {"candidates": 4, "judge": "fast", **self_critic}})


def test_a_vote_picks_the_majority_answer_without_the_judge(make_client) -> None:
    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    response = post(client, select="vote", include_greedy=False, return_trace=True)
    assert response.status_code == 200, response.text
    completion = ChatCompletion.model_validate(response.json())
    assert completion.choices[0].message.content == "it is 4"
    assert completion.choices[0].logprobs is None  # sampled with logprobs, none asked
    report = response.json()["self_critic"]
    assert report["select"] == "vote" and report["judge_calls"] == 0
    assert len(client.engine.generate_calls) == 1
    trace = report["trace"]
    assert trace["selection"]["groups"][0]["votes"] == 2
    assert trace["candidates"][0]["signals"]["tokens"] == 3


def test_include_greedy_and_hybrid_reach_the_run(make_client) -> None:
    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    response = post(client, select="hybrid", include_greedy=True, judge_weight=0.0,
                    return_trace=True)
    assert response.status_code == 200, response.text
    report = response.json()["self_critic"]
    assert report["include_greedy"] is True and report["select"] == "hybrid"
    assert report["trace"]["candidates"][0]["text"] == "greedy: it is 4"
    greedy, sampled = client.engine.generate_calls[0]
    assert greedy.sampling.temperature == 0 and sampled.n == 3
    assert report["judge_calls"] == 0  # judge_weight 0: never asked


def test_the_default_is_a_vote_over_a_pool_holding_the_greedy_decode(make_client) -> None:
    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    report = post(client, return_trace=True).json()["self_critic"]
    assert (report["select"], report["include_greedy"], report["judge_calls"]) == (
        "vote", True, 0)
    assert report["trace"]["candidates"][0]["text"] == "greedy: it is 4"
    asked = post(client, select="knockout", include_greedy=False).json()["self_critic"]
    assert (asked["select"], asked["include_greedy"]) == ("knockout", False)
    assert asked["judge_calls"] > 0


def test_adaptive_sampling_drops_only_the_default_greedy_candidate(make_client) -> None:
    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    response = post(client, adaptive="agreement")
    assert response.status_code == 200, response.text
    assert response.json()["self_critic"]["include_greedy"] is False
    asked = post(client, adaptive="agreement", include_greedy=True)
    assert asked.status_code == 400  # asked for explicitly: not silently dropped
    assert "include_greedy" in asked.json()["error"]["message"]


@pytest.mark.parametrize(("options", "needle"), [
    ({"select": "best"}, "'knockout', 'league', 'vote', 'confidence' or 'hybrid'"),
    ({"select": "league", "candidates": 17}, "at most 16 candidates"),
    ({"judge_weight": 2}, "judge_weight"),
    ({"include_greedy": "maybe"}, "include_greedy"),
])
def test_bad_selection_options_are_a_400(make_client, options: dict, needle: str) -> None:
    client = make_client(max_candidates=32)
    response = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "self_critic": options})
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]["message"], response.json()
