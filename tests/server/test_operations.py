"""Operations on the scripted engine: metrics, overload, body size, deadline, engine death."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from critic_loop.runtime.engines.scripted import ScriptedEngine
from tests.support.knockout import KNOCKOUT

MESSAGES = [{"role": "user", "content": "Hi"}]
BODY = {"model": "tiny", "messages": MESSAGES}


def _sample(client, name: str, **labels: str) -> float:
    """A sample of the metrics of the app `client` talks to."""
    registry = client.app.state.selfcritic.metrics.registry
    return registry.get_sample_value(name, labels) or 0.0


def test_metrics_count_requests_tokens_and_tournaments(make_client) -> None:
    client = make_client()
    before_ok = _sample(client, "selfcritic_requests_total", endpoint="/v1/chat/completions", status="200")
    before_bad = _sample(client, "selfcritic_requests_total", endpoint="/v1/chat/completions", status="400")
    before_judge = _sample(client, "selfcritic_judge_calls_total", mode="fast")
    before_tokens = _sample(client, "selfcritic_tokens_total", phase="judge", kind="prompt")
    before_candidates = _sample(client, "selfcritic_candidates_total")
    client.post("/v1/chat/completions", json=BODY)
    client.post("/v1/chat/completions", json={**BODY, "n": 0})
    client.post("/v1/chat/completions", json={
        **BODY, "self_critic": {**KNOCKOUT, "candidates": 4, "judge": "fast", "schedule": "rounds"}})
    text = client.get("/metrics").text
    assert "selfcritic_request_latency_seconds_bucket" in text
    assert _sample(client, "selfcritic_requests_total", endpoint="/v1/chat/completions",
                   status="200") == before_ok + 2
    assert _sample(client, "selfcritic_requests_total", endpoint="/v1/chat/completions",
                   status="400") == before_bad + 1
    assert _sample(client, "selfcritic_judge_calls_total", mode="fast") == before_judge + 6
    assert _sample(client, "selfcritic_candidates_total") == before_candidates + 4
    assert _sample(client, "selfcritic_tokens_total", phase="judge", kind="prompt") > before_tokens


async def test_overload_rejects_with_retry_after_and_recovers(make_async_client) -> None:
    engine = ScriptedEngine(model_name="tiny", token_delay_s=0.05)
    client = await make_async_client(engine, max_inflight_sequences=2)
    before = _sample(client, "selfcritic_rejections_total", reason="capacity")
    responses = await asyncio.gather(*(client.post("/v1/chat/completions", json=BODY)
                                       for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429, 429, 429]
    rejected = [r for r in responses if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) >= 1 for r in rejected)  # from the estimate
    assert all(r.json()["error"]["type"] == "rate_limit_error" for r in rejected)
    assert _sample(client, "selfcritic_rejections_total", reason="capacity") == before + 4
    assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200
    assert (await client.get("/health")).status_code == 200


async def test_a_chat_too_long_for_the_context_is_a_400_even_behind_a_backlog(
        make_async_client) -> None:
    """Admission charges a prompt no more than the context holds: on a cold server (the
    prior throughput), behind other work, a megabyte message is measured and refused as too
    long (a 400), not shed as if it were a megabyte of work (a 429 no retry cures)."""
    engine = ScriptedEngine(model_name="tiny", max_model_len=2048, token_delay_s=0.05)
    client = await make_async_client(engine)
    busy = asyncio.create_task(client.post("/v1/chat/completions", json=BODY))
    while not engine.running:
        await asyncio.sleep(0.01)
    huge = {"model": "tiny", "messages": [{"role": "user", "content": "word " * 200_000}]}
    response = await client.post("/v1/chat/completions", json=huge)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert (await busy).status_code == 200


async def test_self_critic_counts_its_candidates(make_async_client) -> None:
    engine = ScriptedEngine(model_name="tiny")
    client = await make_async_client(engine, max_inflight_sequences=3)
    response = await client.post("/v1/chat/completions", json={
        **BODY, "self_critic": {"candidates": 4}})
    assert response.status_code == 400  # 4 candidates can never fit in 3
    assert "candidates" in response.json()["error"]["message"]


async def test_body_size_limit(make_async_client) -> None:
    client = await make_async_client(ScriptedEngine(model_name="tiny"), max_body_bytes=2048)
    big = {"model": "tiny", "messages": [{"role": "user", "content": "x" * 4096}]}
    response = await client.post("/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200


async def test_deadline_aborts_engine_work(make_async_client) -> None:
    engine = ScriptedEngine(model_name="tiny", token_delay_s=0.5)
    client = await make_async_client(engine, request_timeout_s=0.2)
    response = await client.post("/v1/chat/completions", json=BODY)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert engine.aborted and not engine.running


async def test_streaming_deadline_ends_with_error_event(make_async_client) -> None:
    engine = ScriptedEngine(model_name="tiny", token_delay_s=0.5)
    client = await make_async_client(engine, request_timeout_s=0.2)
    response = await client.post("/v1/chat/completions", json={**BODY, "stream": True})
    assert "deadline_exceeded" in response.text and response.text.endswith("data: [DONE]\n\n")
    assert engine.aborted and not engine.running


async def test_engine_death_makes_health_503_and_calls_back(make_async_client) -> None:
    engine = ScriptedEngine(model_name="tiny")
    died = asyncio.Event()
    client = await make_async_client(engine, on_engine_death=died.set)
    assert (await client.get("/health")).status_code == 200
    engine.healthy = False
    await asyncio.wait_for(died.wait(), timeout=5)
    health = await client.get("/health")
    assert health.status_code == 503 and health.headers["retry-after"]
    response = await client.post("/v1/chat/completions", json=BODY)
    assert response.status_code == 503


def test_protected_health_and_metrics(make_client) -> None:
    client = make_client(api_key=["k1"], protect_health=True)
    assert client.get("/health").status_code == 401
    assert client.get("/metrics").status_code == 401
    auth = {"Authorization": "Bearer k1"}
    assert client.get("/health", headers=auth).status_code == 200
    assert client.get("/metrics", headers=auth).status_code == 200


def test_cors_and_root_path(make_client) -> None:
    client = make_client(cors_origins=["https://app.example"], root_path="/llm")
    preflight = client.options("/v1/chat/completions", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert client.get("/llm/health").status_code == 200


def test_the_judges_order_agreement_is_reported_and_counted(make_client) -> None:
    def respond(request, index: int) -> str:
        if "[Response 1]" not in request.prompt:
            return ["It is 51", "It is 41"][index]
        return "1"  # a fast judge that answers by position: both orders disagree

    client = make_client(ScriptedEngine(respond, model_name="tiny"))
    labels = {"mode": "fast"}
    before = {r: _sample(client, "selfcritic_judge_order_agreement_total", **labels, result=r)
              for r in ("agreed", "disagreed")}
    reply = client.post("/v1/chat/completions", json={
        **BODY, "self_critic": {**KNOCKOUT, "candidates": 2, "judge": "fast"}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["self_critic"]["order_agreement"] == {
        "agreed": 0, "judged": 1, "rate": 0.0}
    critique = client.post("/v1/critique", json={
        "question": "17 * 3?", "responses": ["It is 51", "It is 41"], "judge": "fast"})
    assert critique.json()["order_agreement"] == {"agreed": 0, "judged": 1, "rate": 0.0}
    assert _sample(client, "selfcritic_judge_order_agreement_total", **labels,
                   result="disagreed") == before["disagreed"] + 2
    assert _sample(client, "selfcritic_judge_order_agreement_total", **labels,
                   result="agreed") == before["agreed"]


def test_two_apps_count_apart_and_metrics_keep_vllms_beside_ours(make_client) -> None:
    from prometheus_client import Counter

    vllm_like = Counter("vllm:selfcritic_test_probe", "Stands in for vLLM's metrics.",
                        registry=REGISTRY)
    try:
        vllm_like.inc()
        first, second = make_client(), make_client()
        assert first.post("/v1/chat/completions", json=BODY).status_code == 200
        labels = {"endpoint": "/v1/chat/completions", "status": "200"}
        assert _sample(first, "selfcritic_requests_total", **labels) == 1
        assert _sample(second, "selfcritic_requests_total", **labels) == 0
        scraped = second.get("/metrics").text
        assert "selfcritic_requests_total" in scraped  # ours
        assert "vllm:selfcritic_test_probe_total 1.0" in scraped  # the process-wide registry's
        assert 'selfcritic_requests_total{endpoint="/v1/chat/completions",status="200"}' \
            not in scraped  # the other app's request is not counted here
    finally:
        REGISTRY.unregister(vllm_like)
