"""The server's self-critic defaults come from one place, its settings: every field of
`SelfCriticConfig` the server has a setting for is taken from it, never from the
library's own defaults (a reason judge, rounds)."""

from __future__ import annotations

import dataclasses

from critic_loop.config import SelfCriticConfig
from server.serving.self_critic_config import BRACKET_FIELDS, JUDGE_FIELDS, server_config
from server.settings import ServerSettings

QUESTION = [{"role": "user", "content": "What is 2 + 2?"}]
NOT_DEFAULTS = {"candidates", "seed"}
"""Settings named like a config field that are not its default: `candidates` is resolved
against `n`, and the settings' `seed` is the engine's."""


def test_every_setting_named_like_a_config_field_is_a_default() -> None:
    config_fields = {f.name for f in dataclasses.fields(SelfCriticConfig)}
    shared = config_fields & set(ServerSettings.model_fields) - NOT_DEFAULTS
    assert shared == set(JUDGE_FIELDS + BRACKET_FIELDS)


def test_unasked_fields_take_the_settings_asked_ones_win() -> None:
    settings = ServerSettings(judge="reason", comparisons=4, judge_max_tokens=64,
                              judge_temperature=0.5, schedule="rounds", merge="answer",
                              select="vote", include_greedy=True, judge_weight=0.25)
    fields = JUDGE_FIELDS + BRACKET_FIELDS
    config = server_config(settings, {}, fields, None, candidates=4)
    assert {name: getattr(config, name) for name in fields if name != "judge"} == {
        name: getattr(settings, name) for name in fields if name != "judge"}
    assert config.mode.value == "reason"
    asked = server_config(settings, {"judge": "fast", "comparisons": None}, fields, None,
                          candidates=4)
    assert asked.mode.value == "fast" and asked.comparisons == 4


def test_a_plain_self_critic_request_runs_the_servers_defaults(make_client) -> None:
    client = make_client()  # the server's defaults: a fast judge, a vote with greedy
    reply = client.post("/v1/chat/completions", json={
        "model": "tiny", "messages": QUESTION, "max_tokens": 4, "self_critic": True})
    assert reply.status_code == 200, reply.text
    config = reply.json()["self_critic"]
    defaults = ServerSettings()
    ran = (config["judge"], config["select"], config["include_greedy"])
    assert ran == (defaults.judge, defaults.select, defaults.include_greedy)
    library = SelfCriticConfig()
    assert ran != (library.mode.value, library.select, library.include_greedy)
