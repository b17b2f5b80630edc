"""The vLLM engine's progress signal: a stat logger counts engine steps, and requests
are in flight from submission until their output stream ends, however it ends."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("vllm")

from critic_loop.engine import EngineProgress, GenerationRequest, ReportsProgress
from critic_loop.runtime.engines.vllm_async import VLLMEngine
from critic_loop.runtime.engines.vllm_progress import StepCounter

REQUEST = GenerationRequest("r", "")


def test_the_stat_logger_counts_steps_with_output() -> None:
    counter = StepCounter()
    logger = counter.logger_factory()(None, 0)
    logger.log_engine_initialized()
    logger.record(scheduler_stats=object(), iteration_stats=None)  # a step with no outputs
    logger.record(scheduler_stats=object(), iteration_stats=object())
    logger.record(scheduler_stats=None, iteration_stats=object(), engine_idx=0)
    assert counter.steps == 2


class _FakeLLM:
    """Yields two outputs per request, bumping the step counter like vLLM's logger."""

    errored = False

    def __init__(self, steps: StepCounter, fail: bool = False) -> None:
        self.steps, self.fail = steps, fail

    async def generate(self, prompt, params, request_id):
        for k in range(2):
            self.steps.steps += 1
            yield SimpleNamespace(k=k)
        if self.fail:
            raise RuntimeError("boom")


def _engine(fail: bool = False) -> VLLMEngine:
    engine = VLLMEngine.__new__(VLLMEngine)  # no model: only the progress bookkeeping
    engine._steps = StepCounter()
    engine._in_flight = 0
    engine._llm = _FakeLLM(engine._steps, fail)
    return engine


async def test_in_flight_spans_the_output_stream() -> None:
    engine = _engine()
    assert isinstance(engine, ReportsProgress)
    seen = [engine.progress() async for _ in engine._outputs([1, 2], None, REQUEST)]
    assert seen == [EngineProgress(outputs=1, in_flight=1), EngineProgress(outputs=2, in_flight=1)]
    assert engine.progress() == EngineProgress(outputs=2, in_flight=0)


async def test_in_flight_ends_on_errors_and_early_exits() -> None:
    failing = _engine(fail=True)
    with pytest.raises(RuntimeError):
        async for _ in failing._outputs([1], None, REQUEST):
            pass
    assert failing.progress().in_flight == 0
    abandoned = _engine()
    stream = abandoned._outputs([1], None, REQUEST)
    await stream.__anext__()
    assert abandoned.progress().in_flight == 1
    await stream.aclose()  # the consumer stopped early (a cancelled request)
    assert abandoned.progress().in_flight == 0
