"""The judge budget is checked before sampling: capped when the server picks max_tokens,
a 400 naming what to lower when the client's own max_tokens cannot be judged."""

from __future__ import annotations

from critic_loop.engines.scripted import ScriptedEngine, echo_responder
from critic_loop.judge_budget import judge_budget
from tests.knockout import KNOCKOUT

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]


def chat(client, **body):
    return client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": QUESTION, **body})


def test_the_server_default_max_tokens_is_capped_so_two_candidates_fit(make_client) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny", max_model_len=600)
    client = make_client(engine, default_max_tokens=512)
    reply = chat(client, self_critic={**KNOCKOUT, "candidates": 2, "judge": "fast", "schedule": "rounds"})
    assert reply.status_code == 200, reply.text
    per_response = judge_budget(engine, QUESTION, "fast", 1).per_response
    [candidates] = [r for call in engine.generate_calls for r in call if r.n == 2]
    assert candidates.sampling.max_tokens == per_response < 512


def test_a_clients_max_tokens_that_cannot_be_judged_is_a_400(make_client) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny", max_model_len=600)
    client = make_client(engine)
    reply = chat(client, max_tokens=400, self_critic={**KNOCKOUT, "candidates": 2, "judge": "reason",
                                                      "judge_max_tokens": 100})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    per_response = judge_budget(engine, QUESTION, "reason", 100).per_response
    assert error["param"] == "max_tokens" and error["code"] == "context_length_exceeded"
    assert f"lower max_tokens to at most {per_response}" in error["message"]
    assert "self_critic.judge_max_tokens" in error["message"]
    assert engine.generate_calls == []  # refused before anything was sampled


def test_a_max_tokens_that_fits_is_kept_and_plain_chat_is_unaffected(make_client) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny", max_model_len=600)
    client = make_client(engine)
    assert chat(client, max_tokens=400).status_code == 200
    reply = chat(client, max_tokens=50, self_critic={**KNOCKOUT, "candidates": 2, "judge": "reason",
                                                     "judge_max_tokens": 100})
    assert reply.status_code == 200, reply.text


def test_a_judge_budget_that_leaves_no_room_says_shorten_the_messages(make_client) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny", max_model_len=300)
    client = make_client(engine)
    reply = chat(client, max_tokens=10, self_critic={**KNOCKOUT, "candidates": 2, "judge": "reason",
                                                     "judge_max_tokens": 290})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "messages"


def test_critique_responses_too_long_to_judge_together_are_a_400(make_client) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny", max_model_len=300)
    client = make_client(engine)
    long = " ".join(["word"] * 150)
    reply = client.post("/v1/critique", json={
        "question": "Which?", "responses": [long, long, "short"], "judge": "fast"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == "responses"
    assert engine.generate_calls == []
    ok = client.post("/v1/critique", json={
        "question": "Which?", "responses": [long, "short"], "judge": "fast"})
    assert ok.status_code == 200, ok.text
