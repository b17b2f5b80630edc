"""Best-of-128 is reachable, and admission charges a self-critic request for its judging."""

from __future__ import annotations

from critic_loop.engines.scripted import ScriptedEngine, echo_responder
from tests.knockout import KNOCKOUT

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]


def test_best_of_128_runs_its_whole_knockout(make_client) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny")
    client = make_client(engine, max_candidates=128, max_inflight_sequences=256)
    reply = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": QUESTION, "max_tokens": 4,
        "self_critic": {**KNOCKOUT, "candidates": 128, "judge": "fast", "comparisons": 1}})
    assert reply.status_code == 200, reply.text
    report = reply.json()["self_critic"]
    assert report["candidates"] == 128 and report["rounds"] == 7
    assert report["judge_calls"] == 127


def test_admission_counts_the_first_round_of_judgments(make_client) -> None:
    client = make_client(max_candidates=64, max_inflight_sequences=100)
    body = {"model": "tiny", "messages": QUESTION, "max_tokens": 4}
    # 32 candidates, then 16 first-round matches × 2 judgments: at most 32 at once
    fits = client.post("/v1/chat/completions", json={
        **body, "self_critic": {**KNOCKOUT, "candidates": 32, "judge": "fast", "comparisons": 2}})
    assert fits.status_code == 200, fits.text
    # 16 × 8 sampled judgments = 128 > 100, although 32 candidates alone would fit
    heavy = client.post("/v1/chat/completions", json={
        **body, "self_critic": {**KNOCKOUT, "candidates": 32, "judge": "reason", "comparisons": 8,
                                "judge_temperature": 1.0}})
    assert heavy.status_code == 400
    error = heavy.json()["error"]
    assert error["code"] == "too_many_sequences" and "128 sequences" in error["message"]


def test_max_candidates_stops_at_128() -> None:
    import pytest
    from pydantic import ValidationError

    from server.settings import ServerSettings

    with pytest.raises(ValidationError, match="128"):
        ServerSettings(max_candidates=129)
