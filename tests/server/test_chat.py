"""Chat completions on the scripted engine: shapes, sampling fields, self-critic."""

from __future__ import annotations

import json

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from critic_loop.engines.scripted import ScriptedEngine
from tests.knockout import KNOCKOUT

MESSAGES = [{"role": "user", "content": "Say something"}]


def test_completion_validates_against_openai_types(client) -> None:
    response = client.post("/v1/chat/completions",
                           json={"model": "tiny", "messages": MESSAGES, "n": 2})
    assert response.status_code == 200, response.text
    completion = ChatCompletion.model_validate(response.json())
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].message.content.startswith("sample 0 of")
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens == sum(
        len(c.message.content.split()) for c in completion.choices)
    assert response.headers["x-request-id"] in completion.id


def test_request_id_is_taken_and_echoed(client) -> None:
    response = client.post("/v1/chat/completions", headers={"X-Request-Id": "abc-123"},
                           json={"model": "tiny", "messages": MESSAGES})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["id"] == "chatcmpl-abc-123"


def test_sampling_fields_reach_the_engine(client) -> None:
    client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "temperature": 0.3, "top_p": 0.5, "seed": 7,
        "stop": ["x"], "max_completion_tokens": 3, "logprobs": True, "top_logprobs": 2})
    [request] = client.engine.generate_calls[-1]
    options = request.sampling
    assert (options.temperature, options.top_p, options.seed, options.stop,
            options.max_tokens, options.logprobs) == (0.3, 0.5, 7, ("x",), 3, 2)


def test_max_tokens_truncates_with_length(client) -> None:
    body = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "max_tokens": 2}).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


def test_streaming_yields_deltas_usage_and_done(client) -> None:
    with client.stream("POST", "/v1/chat/completions", json={
            "model": "tiny", "messages": MESSAGES, "stream": True, "n": 2,
            "stream_options": {"include_usage": True}}) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(line[6:])) for line in lines[:-1]]
    text = {0: "", 1: ""}
    for c in chunks:
        for choice in c.choices:
            text[choice.index] += choice.delta.content or ""
    assert text[0].startswith("sample 0") and text[1].startswith("sample 1")
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop", "stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_self_critic_ranks_candidates_and_reports(make_client) -> None:
    # Candidates are "answer i"; the fast judge always prefers the longer-numbered one.
    def responder(request, index):
        if request.sampling.choices:
            prompt = request.prompt
            first = int(prompt.split("[Response 1]\nanswer ")[1][0])
            second = int(prompt.split("[Response 2]\nanswer ")[1][0])
            return "1" if first > second else "2"
        return f"answer {index}"

    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    body = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": MESSAGES, "n": 2,
        "self_critic": {**KNOCKOUT, "candidates": 4, "judge": "fast", "return_trace": True}}).json()
    contents = [c["message"]["content"] for c in body["choices"]]
    # The winner is the best; the runner-up is the best of the half the winner was not in.
    assert contents[0] == "answer 3" and contents[1] in {"answer 1", "answer 2"}
    report = body["self_critic"]
    assert report["candidates"] == 4 and report["rounds"] == 2 and report["judge"] == "fast"
    assert report["judge_calls"] == 3 * 2
    assert report["consistency"] == 1.0
    assert "trace" in report
    judge = report["usage"]["judge"]
    assert body["usage"]["total_tokens"] == (report["usage"]["candidate"]["total_tokens"]
                                             + judge["total_tokens"])


def test_self_critic_model_alias(client) -> None:
    body = client.post("/v1/chat/completions", json={
        "model": "tiny:self-critic", "messages": MESSAGES}).json()
    assert body["self_critic"]["candidates"] == 4
    assert body["model"] == "tiny:self-critic"


def test_self_critic_streams_keepalive_then_winner(make_client) -> None:
    client = make_client(ScriptedEngine(model_name="tiny", token_delay_s=0.01),
                         keepalive_interval_s=0.01)
    with client.stream("POST", "/v1/chat/completions", json={
            "model": "tiny", "messages": MESSAGES, "stream": True,
            "self_critic": {"candidates": 3, "judge": "fast"},
            "stream_options": {"include_usage": True}}) as response:
        lines = [line for line in response.iter_lines() if line]
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    # Gateways wait for a first data chunk and drop comments: the role comes first, then
    # content-free chunks that they pass on keep the connection alive.
    assert data[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert data[1]["choices"][0]["delta"] == {"content": "", "annotations": []}
    content = "".join(ch["delta"].get("content") or "" for d in data for ch in d["choices"])
    assert content.startswith("sample ")
    summaries = [ch["delta"]["self_critic"] for d in data for ch in d["choices"]
                 if "self_critic" in ch["delta"]]
    assert len(summaries) == 1 and summaries[0]["candidates"] == 3
    assert data[-1]["self_critic"] == summaries[0]
    assert data[-1]["usage"]["total_tokens"] > 0
    assert lines[-1] == "data: [DONE]"
