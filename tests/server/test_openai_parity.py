"""OpenAI/vLLM request fields on the scripted engine: what reaches `SamplingOptions`, what
is refused with a 400 that names it, tool calls, and prefix-cache usage."""

from __future__ import annotations

import json

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from critic_loop.engine import GenerationRequest
from critic_loop.engines.scripted import ScriptedEngine, echo_responder
from server.settings import ServerSettings
from tests.knockout import KNOCKOUT

MESSAGES = [{"role": "user", "content": "Say something"}]
BODY = {"model": "tiny", "messages": MESSAGES}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def _post(client, **fields):
    return client.post("/v1/chat/completions", json={**BODY, **fields})


def _sampling(client):
    return client.engine.requests[-1].sampling


def test_vllm_sampling_fields_reach_sampling_options(client) -> None:
    response = _post(client, presence_penalty=0.5, frequency_penalty=-0.5,
                     logit_bias={"15": -100, "7": 2.5}, top_k=20, min_p=0.1,
                     repetition_penalty=1.2, min_tokens=2, ignore_eos=True,
                     stop_token_ids=[3], bad_words=["bad"], skip_special_tokens=False,
                     spaces_between_special_tokens=False, include_stop_str_in_output=True)
    assert response.status_code == 200, response.text
    options = _sampling(client)
    assert (options.presence_penalty, options.frequency_penalty) == (0.5, -0.5)
    assert dict(options.logit_bias) == {15: -100.0, 7: 2.5}
    assert (options.top_k, options.min_p, options.repetition_penalty) == (20, 0.1, 1.2)
    assert (options.min_tokens, options.ignore_eos, options.stop_token_ids,
            options.bad_words) == (2, True, (3,), ("bad",))
    assert not options.skip_special_tokens and not options.spaces_between_special_tokens
    assert options.include_stop_str_in_output


def test_unset_fields_keep_vllm_defaults(client) -> None:
    assert _post(client).status_code == 200
    options = _sampling(client)
    assert (options.presence_penalty, options.frequency_penalty, options.repetition_penalty,
            options.top_k, options.min_p, options.logit_bias, options.structured) == (
        0.0, 0.0, 1.0, 0, 0.0, (), None)


@pytest.mark.parametrize(("fields", "param"), [
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"frequency_penalty": -3}, "frequency_penalty"),
    ({"repetition_penalty": 0}, "repetition_penalty"),
    ({"top_k": -2}, "top_k"),
    ({"min_p": 1.5}, "min_p"),
    ({"min_tokens": -1}, "min_tokens"),
    ({"logit_bias": {"5": 101}}, "logit_bias"),
    ({"logit_bias": {"five": 1}}, "logit_bias"),
    ({"bad_words": [""]}, "bad_words"),
    ({"stop_token_ids": [-1]}, "stop_token_ids"),
])
def test_out_of_range_values_are_400_naming_the_field(client, fields, param) -> None:
    response = _post(client, **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"].startswith(param), error
    assert client.engine.requests == []


def test_min_tokens_above_max_tokens_is_400(client) -> None:
    response = _post(client, min_tokens=10, max_tokens=5)
    assert response.status_code == 400
    assert "min_tokens" in response.json()["error"]["message"]


@pytest.mark.parametrize("field", ["frobnicate", "use_beam_search", "functions",
                                   "reasoning_effort", "echo"])
def test_unsupported_field_is_400_naming_it(client, field) -> None:
    response = _post(client, **{field: "x"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field
    assert field in error["message"]


def test_advisory_fields_are_accepted(client) -> None:
    response = _post(client, user="u-1", metadata={"team": "a"}, store=False,
                     service_tier="auto", parallel_tool_calls=True, prompt_cache_key="k",
                     prompt_cache_retention="24h", safety_identifier="s",
                     modalities=["text"])
    assert response.status_code == 200, response.text
    assert _post(client, modalities=["text", "audio"]).status_code == 400


@pytest.mark.parametrize(("fields", "expected"), [
    ({"response_format": {"type": "text"}}, None),
    ({"response_format": {"type": "json_object"}}, {"json_object": True}),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "city", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}}},
     {"json_schema": json.dumps({"properties": {"n": {"type": "integer"}}, "type": "object"},
                                sort_keys=True)}),
    ({"structured_outputs": {"regex": "[0-9]+", "disable_any_whitespace": True}},
     {"regex": "[0-9]+", "disable_any_whitespace": True}),
    ({"structured_outputs": {"choice": ["yes", "no"]}}, {"choice": ("yes", "no")}),
    ({"structured_outputs": {"json": '{"type": "array"}'}}, {"json_schema": '{"type": "array"}'}),
    ({"structured_outputs": {"grammar": "root ::= \"a\""}}, {"grammar": "root ::= \"a\""}),
    ({"guided_choice": ["a", "b"]}, {"choice": ("a", "b")}),
    ({"guided_regex": "x+"}, {"regex": "x+"}),
    ({"guided_json": {"type": "object"}}, {"json_schema": '{"type": "object"}'}),
])
def test_structured_output_fields_map_to_one_constraint(client, fields, expected) -> None:
    response = _post(client, **fields)
    assert response.status_code == 200, response.text
    structured = _sampling(client).structured
    if expected is None:
        assert structured is None
    else:
        assert {k: getattr(structured, k) for k in expected} == expected


@pytest.mark.parametrize("fields", [
    {"response_format": {"type": "json_schema"}},
    {"response_format": {"type": "yaml"}},
    {"response_format": {"type": "json_object"}, "guided_regex": "x"},
    {"structured_outputs": {"regex": "a", "choice": ["a"]}},
    {"structured_outputs": {"choice": []}},
    {"structured_outputs": {"structural_tag": "{}"}},
    {"guided_json": "{not json"},
    {"structured_outputs": {"regex": "(unclosed"}},  # the engine's own check
])
def test_bad_structured_outputs_are_400(client, fields) -> None:
    response = _post(client, **fields)
    assert response.status_code == 400, response.text
    assert client.engine.requests == []


def test_self_critic_constrains_every_candidate_but_not_the_judge(client) -> None:
    response = _post(client, self_critic={**KNOCKOUT, "candidates": 3},
                     response_format={"type": "json_object"})
    assert response.status_code == 200, response.text
    candidates = [r for r in client.engine.requests if r.request_id.endswith("-cand")]
    judgments = [r for r in client.engine.requests if not r.request_id.endswith("-cand")]
    assert len(candidates) == 1 and candidates[0].n == 3
    assert candidates[0].sampling.structured.json_object
    assert judgments and all(j.sampling.structured is None for j in judgments)


# -- tools --------------------------------------------------------------------------------
def test_tools_without_a_parser_are_400_not_ignored(client) -> None:
    for fields in ({"tools": [WEATHER]}, {"tools": [WEATHER], "tool_choice": "auto"}):
        response = _post(client, **fields)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "tool_parser_required"
        assert "--tool-call-parser" in error["message"]
    assert client.engine.requests == []


@pytest.mark.parametrize("fields", [
    {"tools": []},
    {"tool_choice": "required"},
    {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
    {"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}},
])
def test_inconsistent_tool_fields_are_400(client, fields) -> None:
    assert _post(client, **fields).status_code == 400


def test_tool_choice_none_renders_tools_and_answers_text(client) -> None:
    response = _post(client, tools=[WEATHER], tool_choice="none")
    assert response.status_code == 200, response.text
    assert "get_weather" in client.engine.requests[-1].prompt
    assert "tool_calls" not in response.json()["choices"][0]["message"]


def _answering(text: str):
    def respond(request: GenerationRequest, index: int) -> str:
        return request.sampling.choices[0] if request.sampling.choices else text
    return respond


def test_named_tool_choice_is_constrained_and_returned_as_a_call(make_client) -> None:
    client = make_client(ScriptedEngine(_answering('{"city": "Paris"}'), model_name="tiny"))
    choice = {"type": "function", "function": {"name": "get_weather"}}
    response = _post(client, tools=[WEATHER], tool_choice=choice)
    assert response.status_code == 200, response.text
    schema = json.loads(_sampling(client).structured.json_schema)
    assert schema == WEATHER["function"]["parameters"]
    completion = ChatCompletion.model_validate(response.json())
    [call] = completion.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.choices[0].message.content is None


def test_required_tool_choice_returns_each_call(make_client) -> None:
    answer = json.dumps([{"name": "get_weather", "parameters": {"city": "Oslo"}}])
    client = make_client(ScriptedEngine(_answering(answer), model_name="tiny"))
    response = _post(client, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    assert response.status_code == 200, response.text
    schema = json.loads(_sampling(client).structured.json_schema)
    assert schema["type"] == "array" and schema["maxItems"] == 1
    choice = ChatCompletion.model_validate(response.json()).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Oslo"}


class _Tokenizer:
    """Enough of a tokenizer for vLLM's hermes parser outside streaming."""

    def get_vocab(self) -> dict[str, int]:
        return {"<tool_call>": 1, "</tool_call>": 2}


HERMES_ANSWER = ('Let me check. <tool_call>{"name": "get_weather", "arguments": '
                 '{"city": "Paris"}}</tool_call>')


def _hermes_client(make_client, answer: str = HERMES_ANSWER):
    engine = ScriptedEngine(_answering(answer), model_name="tiny")
    engine.tokenizer = _Tokenizer()  # type: ignore[attr-defined]
    return make_client(engine, tool_call_parser="hermes", enable_auto_tool_choice=True)


def test_auto_tool_choice_reads_calls_with_vllms_parser(make_client) -> None:
    client = _hermes_client(make_client)
    response = _post(client, tools=[WEATHER])
    assert response.status_code == 200, response.text
    assert "get_weather" in client.engine.requests[-1].prompt  # the template saw the tools
    options = client.engine.requests[-1].sampling
    assert options.structured is None
    assert not options.skip_special_tokens  # hermes reads <tool_call>, special in some models
    choice = ChatCompletion.model_validate(response.json()).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content.strip() == "Let me check."
    [call] = choice.message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather", {"city": "Paris"})


def test_auto_tool_choice_without_a_call_is_plain_text(make_client) -> None:
    client = _hermes_client(make_client, answer="It is sunny.")
    choice = _post(client, tools=[WEATHER]).json()["choices"][0]
    assert choice["message"]["content"] == "It is sunny."
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"


def test_streamed_tool_calls_validate_as_openai_chunks(make_client) -> None:
    client = _hermes_client(make_client)
    response = _post(client, tools=[WEATHER], stream=True,
                     stream_options={"include_usage": True})
    assert response.status_code == 200, response.text
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(line[6:])) for line in lines[:-1]]
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [c.function.name for c in calls] == ["get_weather"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_an_unknown_tool_parser_fails_at_start(make_client) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny")
    engine.tokenizer = _Tokenizer()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="hermes"):
        make_client(engine, tool_call_parser="no-such-parser")


def test_auto_tool_choice_flag_needs_a_parser() -> None:
    with pytest.raises(ValueError, match="tool_call_parser"):
        ServerSettings(enable_auto_tool_choice=True)


# -- prefix-cache usage -------------------------------------------------------------------
def _cached(usage: dict) -> int:
    return usage["prompt_tokens_details"]["cached_tokens"]


def test_cached_tokens_reported_on_a_repeated_prompt(client) -> None:
    first = _post(client).json()["usage"]
    second = _post(client).json()["usage"]
    assert _cached(first) == 0
    assert _cached(second) == second["prompt_tokens"] > 0
    ChatCompletion.model_validate(_post(client).json())  # the shape OpenAI's types expect


def test_cached_tokens_in_streamed_usage(client) -> None:
    _post(client)
    response = _post(client, stream=True, stream_options={"include_usage": True})
    lines = [line for line in response.text.splitlines() if line.startswith("data: {")]
    usage = json.loads(lines[-1][6:])["usage"]
    assert _cached(usage) == usage["prompt_tokens"] > 0


def test_self_critic_cached_tokens_count_candidates_and_judgments(make_client) -> None:
    def respond(request: GenerationRequest, index: int) -> str:
        return request.sampling.choices[0] if request.sampling.choices else f"answer {index}"

    client = make_client(ScriptedEngine(respond, model_name="tiny"))
    fields = {"self_critic": {**KNOCKOUT, "candidates": 2, "judge": "fast", "comparisons": 2}}
    first = _post(client, **fields).json()["usage"]
    judge_prompts = {r.prompt for r in client.engine.requests if r.sampling.choices}
    second = _post(client, **fields).json()["usage"]
    # Run one repeats nothing; run two repeats the candidates' prompt and both judgments'.
    assert len(judge_prompts) == 2
    assert _cached(first) == 0
    assert _cached(second) == second["prompt_tokens"] == first["prompt_tokens"]
