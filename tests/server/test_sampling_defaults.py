"""The model's sampling defaults (its generation_config.json, as vLLM's
`--generation-config`) fill what chat, completions and self-critic candidates omit; an
explicit field wins; judgments keep the judge's settings; `vllm` turns them off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from critic_loop.engine import SamplingOptions
from critic_loop.engines.scripted import ScriptedEngine, echo_responder
from critic_loop.generation_defaults import GenerationDefaults, resolve_generation_config
from server.cli import build_parser, settings_from_args
from server.model_defaults import sampling_defaults
from server.settings import ServerSettings
from tests.knockout import KNOCKOUT

GENERATION = {"bos_token_id": 1, "eos_token_id": [2, 3], "do_sample": True,
              "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05,
              "min_p": 0.02, "presence_penalty": 0.5}
NEUTRAL = SamplingOptions()
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "generation_config.json").write_text(json.dumps(GENERATION))
    return tmp_path


def sampled(client) -> list[SamplingOptions]:
    return [r.sampling for r in client.engine.requests]


def assert_model_defaults(options: SamplingOptions, **explicit: object) -> None:
    expected = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05,
                "min_p": 0.02, "presence_penalty": 0.5, "frequency_penalty": 0.0, **explicit}
    assert {k: getattr(options, k) for k in expected} == expected


def test_chat_takes_the_model_defaults_for_omitted_fields(make_client, model_dir) -> None:
    client = make_client(generation_config=str(model_dir))
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert_model_defaults(sampled(client)[-1])


def test_an_explicit_field_wins(make_client, model_dir) -> None:
    client = make_client(generation_config=str(model_dir))
    reply = client.post("/v1/chat/completions", json={
        **CHAT, "temperature": 0.0, "top_k": -1, "repetition_penalty": 1.0, "top_p": 1.0})
    assert reply.status_code == 200
    assert_model_defaults(sampled(client)[-1], temperature=0.0, top_k=-1,
                          repetition_penalty=1.0, top_p=1.0)


def test_completions_take_them_too(make_client, model_dir) -> None:
    client = make_client(generation_config=str(model_dir))
    reply = client.post("/v1/completions", json={"model": "tiny", "prompt": "Once",
                                                 "max_tokens": 3, "min_p": 0.1})
    assert reply.status_code == 200, reply.text
    assert_model_defaults(sampled(client)[-1], min_p=0.1)
    assert sampled(client)[-1].max_tokens == 3


@pytest.mark.parametrize("judge", ["fast", "reason"])
def test_candidates_take_them_and_judgments_do_not(make_client, model_dir, judge) -> None:
    client = make_client(generation_config=str(model_dir))
    reply = client.post("/v1/chat/completions", json={
        **CHAT, "self_critic": {**KNOCKOUT, "candidates": 4, "judge": judge, "judge_max_tokens": 8}})
    assert reply.status_code == 200, reply.text
    requests = client.engine.requests
    candidates = [r.sampling for r in requests if r.request_id.endswith("-cand")]
    judgments = [r.sampling for r in requests if not r.request_id.endswith("-cand")]
    assert len(candidates) == 1 and judgments
    assert_model_defaults(candidates[0])
    for options in judgments:
        assert options.temperature == 0.0  # the judge's own (fast, or judge_temperature 0)
        assert (options.top_p, options.top_k, options.repetition_penalty, options.min_p,
                options.presence_penalty) == (NEUTRAL.top_p, NEUTRAL.top_k,
                                              NEUTRAL.repetition_penalty, NEUTRAL.min_p,
                                              NEUTRAL.presence_penalty)


def test_vllm_turns_them_off(make_client, model_dir) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny")
    engine.model_dir = str(model_dir)  # type: ignore[attr-defined]
    client = make_client(engine, generation_config="vllm")
    client.post("/v1/chat/completions", json=CHAT)
    client.post("/v1/completions", json={"model": "tiny", "prompt": "Once", "max_tokens": 2})
    for options in sampled(client):
        assert (options.temperature, options.top_p, options.top_k,
                options.repetition_penalty) == (1.0, 1.0, 0, 1.0)


def test_auto_reads_the_served_model_directory(make_client, model_dir) -> None:
    engine = ScriptedEngine(echo_responder, model_name="tiny")
    engine.model_dir = str(model_dir)  # type: ignore[attr-defined]  # as VLLMEngine has
    client = make_client(engine)
    assert ServerSettings().generation_config == "auto"
    client.post("/v1/chat/completions", json=CHAT)
    assert_model_defaults(sampled(client)[-1])


def test_an_engine_without_a_directory_has_none(make_client) -> None:
    client = make_client()  # a scripted engine: no model directory
    client.post("/v1/chat/completions", json=CHAT)
    assert sampled(client)[-1].temperature == 1.0


def test_max_new_tokens_is_the_chat_default_budget(make_client, tmp_path: Path) -> None:
    (tmp_path / "generation_config.json").write_text(json.dumps({"max_new_tokens": 5}))
    client = make_client(generation_config=str(tmp_path))
    client.post("/v1/chat/completions", json={**CHAT, "max_tokens": None})
    assert sampled(client)[-1].max_tokens == 5
    client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 7})
    assert sampled(client)[-1].max_tokens == 7
    client.post("/v1/completions", json={"model": "tiny", "prompt": "Once"})
    assert sampled(client)[-1].max_tokens == 16  # completions' own default, as in vLLM


def test_an_explicit_default_max_tokens_beats_max_new_tokens(tmp_path: Path) -> None:
    (tmp_path / "generation_config.json").write_text(json.dumps({"max_new_tokens": 5}))
    assert sampling_defaults(ServerSettings(generation_config=str(tmp_path)),
                             None).max_tokens == 5
    explicit = ServerSettings(generation_config=str(tmp_path), default_max_tokens=9)
    assert sampling_defaults(explicit, None).max_tokens is None


def test_the_flag_and_its_env_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args, _ = build_parser().parse_known_args(["serve", "--generation-config", "vllm"])
    assert settings_from_args(args).generation_config == "vllm"
    monkeypatch.setenv("SELFCRITIC_GENERATION_CONFIG", "vllm")
    assert ServerSettings().generation_config == "vllm"
    with pytest.raises(ValidationError, match=r"generation_config\.json"):
        ServerSettings(generation_config=str(tmp_path / "no-such-folder"))


def test_resolve_generation_config(model_dir: Path, tmp_path: Path) -> None:
    assert resolve_generation_config("vllm", model_dir) == GenerationDefaults()
    assert resolve_generation_config("auto", None) == GenerationDefaults()
    assert resolve_generation_config("auto", tmp_path / "empty") == GenerationDefaults()
    assert resolve_generation_config("auto", model_dir).top_k == 20
    assert resolve_generation_config(str(model_dir), None).repetition_penalty == 1.05
    (model_dir / "generation_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="no JSON object"):
        resolve_generation_config("auto", model_dir)
