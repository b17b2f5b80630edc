"""Best-of-N end to end on the scripted engine: the result, the report, cancellation and
the pipelined schedule."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from critic_loop.best_of_n import best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import EngineError, GenerationRequest, SamplingOptions, StreamDelta
from critic_loop.runtime.engines.scripted import ScriptedEngine
from tests.support.simulated_judges import scored_responder

PROMPT = "<|user|> What is 2+2?\n<|assistant|>"
QUESTION = [{"role": "user", "content": "What is 2+2?"}]


async def test_candidates_come_back_in_rank_order_with_their_details() -> None:
    texts = ["it is 3", "it is 4 surely", "maybe 1", "it is 2"]
    texts = [f"{t} {s}" for t, s in zip(texts, (3, 9, 1, 2), strict=True)]
    engine = ScriptedEngine(scored_responder(texts))
    sampling = SamplingOptions(max_tokens=64, temperature=0.8, seed=5)
    result = await best_of_n(engine, PROMPT, QUESTION, sampling,
                             SelfCriticConfig(candidates=4, seed=1), "req")
    [candidates] = engine.generate_calls[0]
    assert candidates == GenerationRequest("req-cand", PROMPT, sampling, n=4)
    assert result.winner.index == 1 and result.winner.text == texts[1]
    assert [c.index for c in result.ranked] == [1, 3, 0, 2]  # finalist, then by index
    assert all(c.finish_reason == "stop" for c in result.ranked)
    assert result.winner.completion_tokens == len(texts[1].split())


async def test_report_counts_every_token_by_phase() -> None:
    texts = [f"answer {s}" for s in (2, 6, 4, 1, 3)]
    engine = ScriptedEngine(scored_responder(texts))
    result = await best_of_n(engine, PROMPT, QUESTION, SamplingOptions(),
                             SelfCriticConfig(candidates=5, seed=2), "req")
    report = result.report
    judge_requests = [r for call in engine.generate_calls[1:] for r in call]
    assert report.judge_calls == len(judge_requests) == 8
    assert report.candidate_usage.prompt_tokens == engine.count_tokens(PROMPT)
    assert report.candidate_usage.completion_tokens == 10
    assert report.judge_usage.prompt_tokens == sum(engine.count_tokens(r.prompt)
                                                   for r in judge_requests)
    assert report.judge_usage.completion_tokens == sum(
        j.completion_tokens for m in report.knockout.matches for j in m.judgments)
    assert result.usage == report.candidate_usage + report.judge_usage
    out = report.to_dict()
    assert out["candidates"] == 5 and out["judge"] == "reason" and out["rounds"] == 3
    assert out["consistency"] == 1.0 and out["invalid_votes"] == 0
    assert out["matches"] == {"consistent": 4, "majority": 0, "split": 0, "invalid": 0}
    assert out["usage"]["total"]["total_tokens"] == result.usage.total_tokens
    assert "trace" not in out


async def test_trace_on_request() -> None:
    texts = [f"answer {s}" for s in (2, 6, 2)]
    engine = ScriptedEngine(scored_responder(texts))
    result = await best_of_n(engine, PROMPT, QUESTION, SamplingOptions(),
                             SelfCriticConfig(candidates=3, seed=2, return_trace=True), "req")
    trace = result.report.to_dict()["trace"]
    assert [c["text"] for c in trace["candidates"]] == texts
    assert [c["duplicate_of"] for c in trace["candidates"]] == [None, None, 0]
    [match] = [m for r in trace["rounds"] for m in r["matches"]]
    assert match["pair"] == [0, 1] and match["winner"] == 1
    assert {j["verdict"] for j in match["judgments"]} == {1}
    assert trace["ranking"] == [1, 0, 2]


async def test_a_single_candidate_needs_no_judge() -> None:
    engine = ScriptedEngine()
    result = await best_of_n(engine, PROMPT, QUESTION, SamplingOptions(),
                             SelfCriticConfig(candidates=1), "req")
    assert len(engine.generate_calls) == 1 and result.report.judge_calls == 0
    assert result.winner.text == "sample 0 of req-cand"


async def cancel_when(engine: ScriptedEngine, ready, config: SelfCriticConfig) -> None:
    task = asyncio.ensure_future(best_of_n(engine, PROMPT, QUESTION, SamplingOptions(),
                                           config, "req"))
    for _ in range(500):
        await asyncio.sleep(0.002)
        if ready():
            break
    assert ready(), "the run never reached the point to cancel at"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.running == set()


@pytest.mark.parametrize("schedule", ["rounds", "pipelined"])
async def test_cancelling_during_generation_aborts_the_candidates(schedule: str) -> None:
    engine = ScriptedEngine(lambda r, i: "word " * 40, token_delay_s=0.005)
    await cancel_when(engine, lambda: "req-cand" in engine.running,
                      SelfCriticConfig(candidates=4, schedule=schedule))
    assert "req-cand" in engine.aborted


@pytest.mark.parametrize("schedule", ["rounds", "pipelined"])
async def test_cancelling_during_judging_aborts_the_judgments(schedule: str) -> None:
    def respond(request: GenerationRequest, index: int) -> str:
        if "[Response 1]" in request.prompt:
            return "thinking " * 60 + "\\boxed{1}"
        return f"answer {index}"
    engine = ScriptedEngine(respond, token_delay_s=0.005)
    judging = lambda: any("-r1-" in rid for rid in engine.running)  # noqa: E731
    await cancel_when(engine, judging, SelfCriticConfig(candidates=4, schedule=schedule))
    assert any(rid.startswith("req-r1-m") for rid in engine.aborted)


async def test_engine_errors_propagate() -> None:
    class Broken(ScriptedEngine):
        async def generate(self, requests):
            if any("[Response 1]" in r.prompt for r in requests):
                raise EngineError("judge down")
            return await super().generate(requests)

    for schedule in ("rounds", "pipelined"):
        engine = Broken(lambda r, i: f"answer {i}")
        with pytest.raises(EngineError, match="judge down"):
            await best_of_n(engine, PROMPT, QUESTION, SamplingOptions(),
                            SelfCriticConfig(candidates=4, schedule=schedule), "req")
        assert engine.running == set()


class OrderedStreamEngine(ScriptedEngine):
    """Streams whole candidates in `finish_order`, yielding to the loop in between."""

    def __init__(self, responder, finish_order: list[int], wait_for_judge: bool = False) -> None:
        super().__init__(responder)
        self.finish_order = finish_order
        self.judged_while_streaming = 0
        self.wait_for_judge = wait_for_judge
        """Between candidates, give a judgment that is due the time to be sent (an event,
        with a bound), so that a loaded machine cannot hide the overlap."""
        self.judged = asyncio.Event()

    async def generate(self, requests):
        if "req-cand" in self.running:
            self.judged_while_streaming += len(requests)
            self.judged.set()
        return await super().generate(requests)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        self.running.add(request.request_id)
        try:
            for index in self.finish_order:
                for _ in range(5):
                    await asyncio.sleep(0)
                if self.wait_for_judge and not self.judged.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.judged.wait(), 1.0)
                text = self.responder(request, index)
                yield StreamDelta(index, text, len(text.split()), "stop", prompt_tokens=3)
        except asyncio.CancelledError:
            self.aborted.append(request.request_id)
            raise
        finally:
            self.running.discard(request.request_id)


@pytest.mark.parametrize(("texts", "order"), [
    ([f"answer {s}" for s in (4, 9, 2, 7, 5, 1, 8)], [0, 1, 2, 3, 4, 5, 6]),
    ([f"answer {s}" for s in (4, 9, 2, 7, 5, 1, 8)], [6, 3, 5, 1, 0, 2, 4]),
    # Candidate 4 copies candidate 1 but finishes first: pipelined guesses, then replays.
    (["answer 3", "answer 6", "answer 5", "answer 2", " answer 6", "answer 9"],
     [3, 4, 2, 5, 0, 1]),
])
async def test_pipelined_schedule_reaches_the_round_by_round_result(
        texts: list[str], order: list[int]) -> None:
    config = SelfCriticConfig(candidates=len(texts), seed=3, judge="fast")
    results = {}
    for schedule in ("rounds", "pipelined"):
        engine = OrderedStreamEngine(scored_responder(texts), order,
                                     wait_for_judge=schedule == "pipelined")
        results[schedule] = await best_of_n(
            engine, PROMPT, QUESTION, SamplingOptions(),
            SelfCriticConfig(**{**config.to_dict(), "schedule": schedule}), "req")
    rounds, pipelined = results["rounds"], results["pipelined"]
    assert [c.index for c in pipelined.ranked] == [c.index for c in rounds.ranked]
    assert [(m.key, m.pair, m.winner) for m in pipelined.report.knockout.matches] == [
        (m.key, m.pair, m.winner) for m in rounds.report.knockout.matches]
    assert [c.text for c in pipelined.ranked] == [c.text for c in rounds.ranked]
    assert engine.judged_while_streaming > 0  # judging overlapped generation
    discarded = pipelined.report.knockout.discarded
    assert bool(discarded) == (" answer 6" in texts)
    assert pipelined.report.judge_calls == rounds.report.judge_calls + 2 * len(discarded)


@pytest.mark.parametrize("n", [1, 2, 5])
async def test_pipelined_on_the_scripted_stream(n: int) -> None:
    texts = [f"answer number {s}" for s in (5, 2, 8, 1, 3)[:n]]
    results = []
    for schedule in ("rounds", "pipelined"):
        engine = ScriptedEngine(scored_responder(texts))
        results.append(await best_of_n(
            engine, PROMPT, QUESTION, SamplingOptions(),
            SelfCriticConfig(candidates=n, seed=4, schedule=schedule), "req"))
    rounds, pipelined = results
    assert [c.index for c in pipelined.ranked] == [c.index for c in rounds.ranked]
    assert pipelined.ranked == rounds.ranked  # same texts, token counts, finish reasons
    assert pipelined.report.candidate_usage == rounds.report.candidate_usage
    assert pipelined.report.to_dict()["schedule"] == "pipelined"


async def test_pipelined_does_not_hang_when_the_engine_cancels_a_judge_call() -> None:
    class Flaky(ScriptedEngine):
        async def generate(self, requests):
            raise asyncio.CancelledError  # e.g. the engine shut down under us

    engine = Flaky(lambda r, i: f"answer {i}")
    config = SelfCriticConfig(candidates=4, schedule="pipelined")
    with pytest.raises(EngineError, match="cancelled"):
        await asyncio.wait_for(best_of_n(engine, PROMPT, QUESTION, SamplingOptions(), config,
                                         "req"), timeout=5)
