"""`POST /v1/completions` on the scripted engine: shapes against the openai client's types,
several prompts, streaming, echo, logprobs, and what is refused."""

from __future__ import annotations

import openai
import pytest
from openai.types import Completion as OpenAICompletion

from critic_loop.engine import Completion, TokenLogprob
from critic_loop.runtime.engines.scripted import ScriptedEngine


def _stream(client, **body) -> list[OpenAICompletion]:
    """The chunks as the openai client reads them (over the app's test transport)."""
    with client.stream("POST", "/v1/completions",
                       json={"model": "tiny", "stream": True, **body}) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    sdk = openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="-", http_client=client)
    chunks = list(sdk.completions.create(model="tiny", stream=True, **body))
    assert len(chunks) == len(lines) - 1
    return chunks


def test_one_prompt_validates_against_openai_types(client) -> None:
    response = client.post("/v1/completions", json={"model": "tiny", "prompt": "Once upon",
                                                    "n": 2})
    assert response.status_code == 200, response.text
    completion = OpenAICompletion.model_validate(response.json())
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[1].text.startswith("sample 1 of")
    assert completion.usage.prompt_tokens == 2  # the raw prompt: no chat template
    [request] = client.engine.generate_calls[-1]
    assert request.prompt == "Once upon" and request.sampling.max_tokens == 16


def test_several_prompts_are_batched_and_numbered_prompt_major(client) -> None:
    body = client.post("/v1/completions", json={
        "model": "tiny", "prompt": ["first prompt", "second one here"], "n": 2}).json()
    requests = client.engine.generate_calls[-1]
    assert [r.prompt for r in requests] == ["first prompt", "second one here"]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    # choice 2 is prompt 1's sample 0
    assert body["choices"][2]["text"] == f"sample 0 of {requests[1].request_id}"
    assert body["usage"]["prompt_tokens"] == 2 + 3


def test_token_id_prompts_reach_the_engine_as_ids(client) -> None:
    # what an upstream client sends (critic_loop.runtime.engines.upstream): the ids it
    # rendered, so another selfcritic can judge through this server
    sdk = openai.OpenAI(base_url=str(client.base_url) + "/v1", api_key="-", http_client=client)
    completion = sdk.completions.create(model="tiny", prompt=[5, 6, 7], n=2)
    [request] = client.engine.generate_calls[-1]
    assert request.prompt_ids == (5, 6, 7) and request.n == 2
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.usage.prompt_tokens == 3
    body = client.post("/v1/completions", json={
        "model": "tiny", "prompt": [[1, 2], [3, 4, 5, 6]]}).json()
    assert [r.prompt_ids for r in client.engine.generate_calls[-1]] == [(1, 2), (3, 4, 5, 6)]
    assert body["usage"]["prompt_tokens"] == 6 and len(body["choices"]) == 2


def test_sampling_fields_reach_the_engine(client) -> None:
    client.post("/v1/completions", json={
        "model": "tiny", "prompt": "x", "temperature": 0.3, "top_p": 0.5, "seed": 7,
        "stop": ["y"], "max_tokens": 3, "logprobs": 2, "presence_penalty": 0.5,
        "user": "advisory"})
    [request] = client.engine.generate_calls[-1]
    options = request.sampling
    assert (options.temperature, options.top_p, options.seed, options.stop,
            options.max_tokens, options.logprobs, options.presence_penalty) == (
        0.3, 0.5, 7, ("y",), 3, 2, 0.5)


def test_logprobs_take_the_legacy_shape(make_client) -> None:
    def responder(request, index):
        return Completion(index, "Hi there", 2, "stop", logprobs=(
            TokenLogprob("Hi", -0.1, (("Hi", -0.1), ("Yo", -2.0))),
            TokenLogprob(" there", -0.2, ((" there", -0.2),))))

    client = make_client(ScriptedEngine(responder, model_name="tiny"))
    body = client.post("/v1/completions", json={"model": "tiny", "prompt": "x",
                                                "logprobs": 2}).json()
    logprobs = OpenAICompletion.model_validate(body).choices[0].logprobs
    assert logprobs.tokens == ["Hi", " there"]
    assert logprobs.token_logprobs == [-0.1, -0.2]
    assert logprobs.top_logprobs[0] == {"Hi": -0.1, "Yo": -2.0}
    assert logprobs.text_offset == [0, 2]


def test_echo_puts_the_prompt_first(client) -> None:
    body = client.post("/v1/completions", json={"model": "tiny", "prompt": "Say:",
                                                "echo": True}).json()
    assert body["choices"][0]["text"].startswith("Say:sample 0 of")
    chunks = _stream(client, prompt="Say:", echo=True)
    assert "".join(c.choices[0].text for c in chunks).startswith("Say:sample 0 of")


def test_streaming_interleaves_prompts_then_usage_and_done(client) -> None:
    chunks = _stream(client, prompt=["a b", "c"], n=2, stream_options={"include_usage": True})
    text: dict[int, str] = {}
    finishes = []
    for c in chunks:
        for choice in c.choices:
            text[choice.index] = text.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finishes.append(choice.index)
    assert sorted(text) == [0, 1, 2, 3] and sorted(finishes) == [0, 1, 2, 3]
    assert text[3].startswith("sample 1 of")
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.prompt_tokens == 3
    assert usage.completion_tokens == sum(len(t.split()) for t in text.values())


@pytest.mark.parametrize(("body", "param"), [
    ({"suffix": "end"}, "suffix"),
    ({"best_of": 3}, None),
    ({"echo": True, "logprobs": 1}, None),
    ({"prompt": ["fine", ""]}, "prompt"),
    ({"prompt": [[1, 2], []]}, "prompt"),
    ({"prompt": [3, -1]}, "prompt"),
    ({"prompt": [1, 50_000]}, "prompt"),  # outside the scripted engine's vocabulary
    ({"prompt": ["text", [1, 2]]}, "prompt"),
    ({"prompt": [1, 2], "echo": True}, None),
    ({"prompt": list(range(2048))}, "prompt"),  # the ids alone fill the context
    ({"self_critic": True}, "self_critic"),
    ({"logprobs": 21}, "logprobs"),
    ({"max_tokens": 5000}, "max_tokens"),
    ({"model": "tiny:self-critic"}, "model"),
])
def test_unsupported_or_bad_input_is_a_400_naming_it(client, body, param) -> None:
    response = client.post("/v1/completions", json={"model": "tiny", "prompt": "x", **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param or param in error["message"]
    assert not client.engine.generate_calls


def test_unknown_model_is_a_404(client) -> None:
    response = client.post("/v1/completions", json={"model": "other", "prompt": "x"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
