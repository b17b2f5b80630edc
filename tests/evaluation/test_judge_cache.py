"""The replaying engine: a deterministic request is generated once, a sampled one always."""

from __future__ import annotations

import pytest

from critic_loop.engine import EncodesText, GenerationRequest, SamplingOptions
from critic_loop.runtime.engines.scripted import ScriptedEngine
from evaluation.judge_cache import ReplayingEngine


async def test_greedy_and_choice_requests_are_replayed_and_samples_are_not() -> None:
    inner = ScriptedEngine()
    engine = ReplayingEngine(inner)
    fast = SamplingOptions(max_tokens=1, temperature=0, choices=("1", "2"))
    first = await engine.generate([GenerationRequest("a", "judge this", fast)])
    again = await engine.generate([GenerationRequest("b", "judge this",
                                                     SamplingOptions(max_tokens=1, temperature=0,
                                                                     choices=("1", "2"), seed=7))])
    assert again[0].request_id == "b" and again[0].completions == first[0].completions
    await engine.generate([GenerationRequest("c", "judge that", fast)])
    sampled = SamplingOptions(max_tokens=8, temperature=0.7)
    await engine.generate([GenerationRequest("d", "judge this", sampled)] * 2)
    assert (engine.sent, engine.replayed) == (4, 1)
    assert len(inner.requests) == 4


def test_text_is_encoded_by_the_inner_engine_or_refused() -> None:
    class Encoding(ScriptedEngine):
        def encode_text(self, texts):
            return [tuple(range(len(t))) for t in texts]

    engine = ReplayingEngine(Encoding())
    assert isinstance(engine, EncodesText)  # reason verdicts extend token-id prompts
    assert engine.encode_text(["abc", ""]) == [(0, 1, 2), ()]
    with pytest.raises(TypeError, match="cannot encode"):
        ReplayingEngine(ScriptedEngine()).encode_text(["x"])
