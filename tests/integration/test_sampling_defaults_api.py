"""The built-in model's sampling defaults (its generation_config.json) on the real
engine: the server reads them at start, and a request that omits them samples exactly as
one that sends them (same seed; both with the prompt cached, since a cached prefill's
numerics differ slightly from a fresh one's)."""

from __future__ import annotations

import openai

from critic_loop.builtin_models import BUILTIN_MODELS
from critic_loop.generation_defaults import GenerationDefaults
from tests.support.live_server import MODEL

QUESTION = [{"role": "user", "content": "Name three colours."}]


def test_omitted_fields_take_the_models_defaults(server, client: openai.OpenAI) -> None:
    defaults = GenerationDefaults.from_config(BUILTIN_MODELS[MODEL].generation).set_values()
    assert f"generation_config.json: {defaults}" in server.log()

    def answer(**fields: float) -> str:
        return client.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=24, seed=11,
            **fields).choices[0].message.content

    answer(**defaults)  # both compared answers then read the prompt from the prefix cache
    assert answer() == answer(**defaults)
