"""`self_critic.adaptive` through the app: stopped candidates reported and counted, and the
options it cannot serve as OpenAI-shaped 400s."""

from __future__ import annotations

from critic_loop.engine import GenerationRequest
from critic_loop.runtime.engines.scripted import ScriptedEngine

MESSAGES = [{"role": "user", "content": "What is 6 × 7?"}]
CANDIDATES = ["It is 42", "It is 42", "It is 42", " ".join(["well,"] * 40 + ["41"])]


def responder(request: GenerationRequest, index: int) -> str:
    """Candidate i answers CANDIDATES[i]; the fast judge says "1"."""
    if request.sampling.choices:
        return "1"
    return CANDIDATES[int(request.request_id.rsplit("-cand", 1)[1])]


def candidates_counted(client) -> float:
    lines = client.get("/metrics").text.splitlines()
    return sum(float(line.split()[-1]) for line in lines
               if line.startswith("selfcritic_candidates_total "))


def test_adaptive_agreement_stops_the_late_candidate(make_client) -> None:
    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    before = candidates_counted(client)
    response = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "seed": 1,
        "self_critic": {"candidates": 4, "judge": "fast", "merge": "answer",
                        "adaptive": "agreement"}})
    assert response.status_code == 200, response.text
    body = response.json()
    adaptive = body["self_critic"]["adaptive"]
    assert (adaptive["started"], adaptive["finished"], adaptive["stopped"]) == (4, 3, 1)
    [stopped] = adaptive["stopped_candidates"]
    assert stopped["index"] == 3 and stopped["reason"] == "agreement"
    assert body["choices"][0]["message"]["content"] == "It is 42"
    candidate = body["self_critic"]["usage"]["candidate"]
    assert candidate["completion_tokens"] == 3 * 3 + stopped["completion_tokens"]
    assert candidates_counted(client) - before == 4  # every candidate started


def test_adaptive_options_are_checked(make_client) -> None:
    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    for options, n, param in (({"adaptive": "sometimes"}, 1, "self_critic.adaptive"),
                              ({"adaptive": "agreement"}, 2, "n"),
                              ({"adaptive": "off", "adaptive_wave": 2}, 1, "self_critic")):
        response = client.post("/v1/chat/completions", json={
            "model": "tiny", "messages": MESSAGES, "n": n,
            "self_critic": {"candidates": 4, **options}})
        assert response.status_code == 400, (options, response.text)
        assert response.json()["error"]["param"] == param
