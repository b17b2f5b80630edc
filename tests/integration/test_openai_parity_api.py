"""OpenAI/vLLM request fields on the real vLLM CPU engine, through the official client:
structured outputs (also under self-critic), penalties and logit_bias, 400s for what we
do not support, and prefix-cache hits in usage."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from transformers import AutoTokenizer

from critic_loop.builtin_models import TEST_MODEL
from critic_loop.runtime.model_store import resolve_model
from tests.support.live_server import MODEL

CITY = {"type": "object", "additionalProperties": False, "required": ["city", "score"],
        "properties": {"city": {"type": "string", "enum": ["Paris", "London", "Rome"]},
                       "score": {"type": "integer", "minimum": 0, "maximum": 9}}}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}}
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in JSON."}]


def _valid(text: str) -> dict:
    value = json.loads(text)
    jsonschema.validate(value, CITY)
    return value


def test_json_schema_answer_is_schema_valid(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=0, max_tokens=60,
        response_format=RESPONSE_FORMAT)
    _valid(completion.choices[0].message.content)


def test_json_schema_under_self_critic_constrains_every_candidate(
        client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=1.0, seed=5, max_tokens=60, n=3,
        response_format=RESPONSE_FORMAT,
        extra_body={"self_critic": {"candidates": 3, "judge": "fast"}})
    for choice in completion.choices:  # every ranked candidate, the winner first
        _valid(choice.message.content)
    assert completion.model_extra["self_critic"]["candidates"] == 3


def test_structured_outputs_choice(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=1.0, seed=2, max_tokens=10, n=3,
        extra_body={"structured_outputs": {"choice": ["Paris", "Berlin"]}})
    assert {c.message.content for c in completion.choices} <= {"Paris", "Berlin"}


def test_penalties_change_the_output(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Write the word 'cat' twenty times."}]

    def greedy(**fields) -> str:
        return client.chat.completions.create(
            model=MODEL, messages=messages, temperature=0, max_tokens=40,
            **fields).choices[0].message.content

    plain = greedy()
    assert greedy(presence_penalty=2.0, frequency_penalty=2.0) != plain
    assert greedy(extra_body={"repetition_penalty": 2.0}) != plain


def test_logit_bias_against_the_greedy_first_token(client: openai.OpenAI) -> None:
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(TEST_MODEL).path)

    def greedy(**fields) -> str:
        return client.chat.completions.create(
            model=MODEL, messages=QUESTION, temperature=0, max_tokens=8,
            **fields).choices[0].message.content

    plain = greedy()
    first = tokenizer.encode(plain, add_special_tokens=False)[0]
    biased = greedy(logit_bias={str(first): -100})
    assert biased != plain
    assert tokenizer.encode(biased, add_special_tokens=False)[0] != first


def test_named_tool_choice_returns_a_schema_valid_call(client: openai.OpenAI) -> None:
    tool = {"type": "function", "function": {"name": "capital", "parameters": CITY}}
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=0, max_tokens=60, tools=[tool],
        tool_choice={"type": "function", "function": {"name": "capital"}})
    [call] = completion.choices[0].message.tool_calls
    assert call.function.name == "capital"
    _valid(call.function.arguments)


@pytest.mark.parametrize(("fields", "param"), [
    ({"frobnicate": 1}, "frobnicate"),
    ({"use_beam_search": True}, "use_beam_search"),
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"logit_bias": {"99999999": 5}}, "logit_bias"),  # out of the vocabulary: vLLM's check
    ({"structured_outputs": {"regex": "(unclosed"}}, None),  # xgrammar's check
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tool_choice"),
])
def test_unsupported_or_bad_fields_are_400(client: openai.OpenAI, fields, param) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=5,
                                       extra_body=fields)
    error = caught.value.body
    if param is not None:
        assert error["param"] == param, error
        assert param in error["message"]


def test_advisory_fields_are_accepted(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=5, user="u-1", metadata={"k": "v"},
        store=False, service_tier="auto")
    assert completion.choices[0].message.content


def test_cached_tokens_on_a_repeated_prompt(client: openai.OpenAI) -> None:
    # Several KV blocks long and unlike any other test's prompt, so the first call misses
    long = [{"role": "system", "content": "You answer briefly. " + "Facts: " +
             ", ".join(f"item {i} is {i * 7 % 13}" for i in range(60))},
            {"role": "user", "content": "Which item is 3?"}]

    def usage(**fields):
        return client.chat.completions.create(model=MODEL, messages=long, temperature=0,
                                              max_tokens=4, **fields).usage

    first, second = usage(), usage()
    assert first.prompt_tokens_details.cached_tokens < first.prompt_tokens
    assert second.prompt_tokens_details.cached_tokens >= second.prompt_tokens // 2
    streamed = [c for c in client.chat.completions.create(
        model=MODEL, messages=long, temperature=0, max_tokens=4, stream=True,
        stream_options={"include_usage": True}) if c.usage][-1].usage
    assert streamed.prompt_tokens_details.cached_tokens >= streamed.prompt_tokens // 2
