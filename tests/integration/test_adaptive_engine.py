"""Adaptive sampling on the real vLLM CPU engine: a candidate stopped by agreement frees
its sequence (the engine stops stepping, nothing is left in flight)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from critic_loop.adaptive import sample_adaptively
from critic_loop.builtin_models import TEST_MODEL
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import GenerationRequest, SamplingOptions, StreamDelta

LONG = 1500
"""Tokens the late candidate would run to (ignoring EOS) if it were not stopped."""


class LateCandidate:
    """The real engine, where candidate 2 is made long: greedy candidates 0 and 1 agree
    after 8 tokens, and then candidate 2 can no longer change the answer."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        if request.request_id.endswith("-cand2"):
            request = replace(request, sampling=replace(request.sampling, max_tokens=LONG,
                                                        ignore_eos=True))
        return self.engine.stream(request)


@pytest.fixture(scope="module")
def engine():
    from critic_loop.runtime.engines.vllm_async import VLLMEngine

    started = VLLMEngine.from_model(TEST_MODEL, enforce_eager=True)
    yield started
    asyncio.run(started.close())


async def test_a_stopped_candidate_frees_its_sequence(engine) -> None:
    prompt = engine.render_chat([{"role": "user", "content": "Tell me about dragons."}])
    request = GenerationRequest("adaptive-cand", prompt,
                                SamplingOptions(max_tokens=8, temperature=0.0), n=3)
    sample = await sample_adaptively(LateCandidate(engine), request,
                                     SelfCriticConfig(candidates=3, adaptive="agreement"))
    [stopped] = sample.report.stopped
    assert (stopped.index, stopped.reason) == (2, "agreement")
    assert stopped.completion_tokens < LONG
    assert sample.usage.completion_tokens == 8 + 8 + stopped.completion_tokens
    assert engine.progress().in_flight == 0
    steps = engine.progress().outputs
    await asyncio.sleep(2.0)  # a sequence still decoding would keep the engine stepping
    assert engine.progress().outputs == steps
    assert not engine._llm.output_processor.has_unfinished_requests()
