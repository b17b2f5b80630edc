"""The real server on the real vLLM CPU engine, through the official openai client."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.live_server import API_KEY, MODEL, SECOND_KEY

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
# What the 135M test model answers is not asserted (its greedy answer moved with the
# dependencies' versions); the 0.5B default model's right answer is asserted in
# test_builtin_coder_model.py. Here: shapes, and parity between ways of asking.


def greedy_text(client: openai.OpenAI, max_tokens: int = 40) -> str:
    return client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0,
                                          max_tokens=max_tokens).choices[0].message.content


def test_models_lists_plain_and_self_critic(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list().data]
    assert ids == [MODEL, f"{MODEL}:self-critic"]


def test_capital_of_france(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION,
                                                temperature=0, max_tokens=40)
    choice = completion.choices[0]
    assert choice.message.content and choice.message.content == greedy_text(client)
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage.prompt_tokens > 10
    assert 0 < completion.usage.completion_tokens <= 40


def test_streaming_deltas_then_done(server, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=0, max_tokens=40, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == greedy_text(client)  # the stream carries the same greedy answer
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    # The raw stream ends with [DONE].
    with httpx.stream("POST", server.url + "/v1/chat/completions", timeout=120,
                      headers={"Authorization": f"Bearer {API_KEY}"},
                      json={"model": MODEL, "messages": QUESTION, "max_tokens": 5,
                            "stream": True}) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_n_samples(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION, n=3,
                                                temperature=1.0, max_tokens=16, seed=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert all(c.message.content for c in completion.choices)
    assert len({c.message.content for c in completion.choices}) > 1


def test_seed_reproducible(client: openai.OpenAI) -> None:
    def sample() -> str:
        return client.chat.completions.create(
            model=MODEL, messages=QUESTION, temperature=1.0, max_tokens=24,
            seed=1234).choices[0].message.content

    assert sample() == sample()


def test_stop_sequence(client: openai.OpenAI) -> None:
    full = greedy_text(client)
    words = full.split()
    assert len(words) > 2, full
    stop = words[2]  # a word the greedy answer reaches, so the stop must cut it there
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION,
                                                temperature=0, max_tokens=40, stop=[stop])
    content = completion.choices[0].message.content
    assert stop not in content and full.startswith(content)
    assert completion.choices[0].finish_reason == "stop"


def test_logprobs(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION,
                                                temperature=0, max_tokens=8, logprobs=True,
                                                top_logprobs=3)
    content = completion.choices[0].logprobs.content
    assert 0 < len(content) <= completion.usage.completion_tokens  # the EOS token is not text
    assert "".join(t.token for t in content) == completion.choices[0].message.content
    for token in content:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        # greedy: the chosen token is the most likely one
        assert token.logprob == pytest.approx(token.top_logprobs[0].logprob)


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"messages": []}, 400),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400),
    ({"messages": [{"role": "user", "content": [{"type": "video", "video": "x"}]}]}, 400),
    ({"messages": QUESTION, "n": 0}, 400),
    ({"messages": QUESTION, "n": 1000}, 400),
    ({"messages": QUESTION, "max_tokens": 100_000}, 400),
    ({"messages": QUESTION, "temperature": "hot"}, 400),
    ({"messages": QUESTION, "model": "gpt-5"}, 404),
])
def test_bad_input_is_4xx_and_server_stays_healthy(server, client: openai.OpenAI,
                                                   kwargs, status) -> None:
    call = {"model": MODEL, **kwargs}
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**call)
    assert caught.value.status_code == status
    assert set(caught.value.body) >= {"message", "type", "param", "code"}
    assert httpx.get(server.url + "/health").status_code == 200
    ok = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=4)
    assert ok.choices[0].message.content


def test_invalid_json_is_400(server) -> None:
    response = httpx.post(server.url + "/v1/chat/completions", content=b"{oops",
                          headers={"Authorization": f"Bearer {API_KEY}",
                                   "content-type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_api_keys(server) -> None:
    no_key = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        no_key.models.list()
    response = httpx.get(server.url + "/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    second = openai.OpenAI(base_url=server.url + "/v1", api_key=SECOND_KEY, max_retries=0)
    assert second.models.list().data
    # health stays open for orchestrators unless --protect-health; version needs the key
    assert httpx.get(server.url + "/health").status_code == 200
    assert httpx.get(server.url + "/version").status_code == 401
    assert httpx.get(server.url + "/version",
                     headers={"Authorization": f"Bearer {API_KEY}"}).json()["version"]
