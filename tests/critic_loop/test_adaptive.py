"""Adaptive best-of-N on the scripted engine: agreement and confidence stopping, waves,
usage of stopped candidates, and that stopping never changes a certain winner."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from critic_loop.adaptive import sample_adaptively
from critic_loop.best_of_n import best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Completion, GenerationRequest, SamplingOptions, TokenLogprob
from critic_loop.runtime.engines.scripted import ScriptedEngine
from critic_loop.stopping import CONFIDENCE_TOP_K, CONFIDENCE_WINDOW

PROMPT = "<|user|> How many?\n<|assistant|>"
QUESTION = [{"role": "user", "content": "How many?"}]


def candidate(answer: str, words: int = 4) -> str:
    """A candidate `words` long whose last number is `answer`."""
    return " ".join(["so"] * (words - 1) + [answer])


def scripted(candidates: Sequence[str | Completion]) -> ScriptedEngine:
    """Candidate i (request `...-cand{i}`, or sample i of `...-cand`) answers
    `candidates[i]`; a fast judge says "1",
    so with K = 2 every match splits and vote counts decide (the plurality wins)."""
    def respond(request: GenerationRequest, index: int) -> str | Completion:
        if request.sampling.choices:
            return request.sampling.choices[0]
        number = request.request_id.rsplit("-cand", 1)[1]  # "" for one n=N request
        return candidates[int(number) if number else index]
    return ScriptedEngine(respond)


def request(n: int, seed: int | None = None) -> GenerationRequest:
    return GenerationRequest("req-cand", PROMPT, SamplingOptions(max_tokens=100, seed=seed), n=n)


def config(n: int, adaptive: str = "agreement", wave: int = 0) -> SelfCriticConfig:
    return SelfCriticConfig(candidates=n, judge="fast", merge="answer", adaptive=adaptive,
                            adaptive_wave=wave, seed=0)


async def test_agreement_aborts_the_running_candidates_in_the_engine() -> None:
    texts = [candidate("4")] * 5 + [candidate("7", 40)] * 3
    engine = scripted(texts)
    sample = await sample_adaptively(engine, request(8), config(8))
    report = sample.report
    # after five agree, the three still running could not overtake them
    assert [s.index for s in report.stopped] == [5, 6, 7]
    assert {s.reason for s in report.stopped} == {"agreement"}
    assert report.finished == (0, 1, 2, 3, 4) and report.started == 8
    assert {"req-cand5", "req-cand6", "req-cand7"} <= set(engine.aborted)
    assert not engine.running  # every stopped stream is closed
    assert [c.index for c in sample.result.completions] == [0, 1, 2, 3, 4]
    # usage: the finished candidates' tokens and what the stopped ones had generated, once
    assert sample.usage.completion_tokens == engine.outputs
    assert sample.usage.completion_tokens == 5 * 4 + sum(s.completion_tokens
                                                         for s in report.stopped)
    assert all(0 < s.completion_tokens < 40 for s in report.stopped)
    assert sample.usage.prompt_tokens == engine.count_tokens(PROMPT)
    assert report.tokens_saved == sum(4 - min(4, s.completion_tokens) for s in report.stopped)


async def test_an_unsettled_answer_runs_every_candidate() -> None:
    texts = [candidate("4"), candidate("5"), candidate("4", 9), candidate("5", 9)]
    engine = scripted(texts)
    sample = await sample_adaptively(engine, request(4), config(4))
    assert sample.report.stopped == () and sample.report.finished == (0, 1, 2, 3)
    assert engine.aborted == []
    assert sample.usage.completion_tokens == 4 + 4 + 9 + 9


@pytest.mark.parametrize("trial", range(12))
async def test_stopping_never_changes_the_winner_when_the_leader_is_certain(trial: int) -> None:
    rng = random.Random(trial)
    n = rng.choice([4, 6, 8])
    answers = ["4"] * (n // 2 + 1) + [rng.choice("5678") for _ in range(n - n // 2 - 1)]
    rng.shuffle(answers)
    texts = [candidate(a, rng.randint(2, 30)) for a in answers]
    full = await best_of_n(scripted(texts), PROMPT, QUESTION, SamplingOptions(max_tokens=100),
                           config(n, "off"), "req")
    adaptive = await best_of_n(scripted(texts), PROMPT, QUESTION,
                               SamplingOptions(max_tokens=100), config(n), "req")
    assert full.winner.text.split()[-1] == adaptive.winner.text.split()[-1] == "4"


async def test_seeds_follow_the_samples_of_one_n_request() -> None:
    engine = scripted([candidate("4", 6)] * 3)
    await sample_adaptively(engine, request(3, seed=10), config(3))
    assert sorted((r.request_id, r.sampling.seed, r.n) for r in engine.requests) == [
        ("req-cand0", 10, 1), ("req-cand1", 11, 1), ("req-cand2", 12, 1)]


async def test_waves_stop_once_unanimous() -> None:
    engine = scripted([candidate("4")] * 8)
    sample = await sample_adaptively(engine, request(8), config(8, wave=2))
    # two unanimous waves: P(majority) = 1 - 2^-5 >= 0.95 by adaptive consistency's criterion
    assert sample.report.started == 4 and sample.report.waves == 2
    assert len(engine.requests) == 4 and sample.report.stopped == ()
    assert sample.report.tokens_saved == 4 * 4


async def test_waves_reach_n_only_while_unsettled() -> None:
    engine = scripted([candidate(a) for a in "45454545"])
    sample = await sample_adaptively(engine, request(8), config(8, wave=2))
    assert sample.report.started == 8 and sample.report.waves == 4
    assert len(engine.requests) == 8


async def test_a_wave_is_cut_short_once_the_answer_is_settled() -> None:
    texts = [candidate(a) for a in "4449"] + [candidate("4")] * 3 + [candidate("9", 40)]
    engine = scripted(texts)
    sample = await sample_adaptively(engine, request(8), config(8, wave=4))
    # 3 to 1 after the first wave: P(majority) = 0.81, so a second wave; there 6 to 1 with
    # one running is certain, and the last candidate stops
    assert sample.report.waves == 2 and sample.report.started == 8
    assert [s.index for s in sample.report.stopped] == [7]
    assert not engine.running


def confident(answer: str, words: int, spread: float) -> Completion:
    """`words` tokens whose top alternatives lie `spread` apart (flat when small)."""
    top = tuple((f"t{k}", -0.01 - k * spread) for k in range(CONFIDENCE_TOP_K))
    logprobs = tuple(TokenLogprob("so", top[0][1], top) for _ in range(words))
    return Completion(0, candidate(answer, words), words, "stop", logprobs=logprobs)


async def test_confidence_stops_a_doubtful_candidate_after_the_warm_up() -> None:
    long = CONFIDENCE_WINDOW + 20
    texts = [confident("4", 4, 2.0), confident("5", 4, 2.0),  # the warm-up: confident
             confident("6", long, 0.1),  # doubtful: stopped once a window is below
             confident("4", long, 3.0)]
    engine = scripted(texts)
    sample = await sample_adaptively(engine, request(4), config(4, "confidence"))
    report = sample.report
    assert [(s.index, s.reason) for s in report.stopped] == [(2, "confidence")]
    assert report.threshold is not None and report.finished == (0, 1, 3)
    assert "req-cand2" in engine.aborted and not engine.running
    assert CONFIDENCE_WINDOW <= report.stopped[0].completion_tokens < long
    assert all(r.sampling.logprobs == CONFIDENCE_TOP_K for r in engine.requests)
    assert all(c.logprobs is None for c in sample.result.completions)  # not asked for


async def test_best_of_n_ranks_the_finished_candidates_and_reports_the_rest() -> None:
    texts = [candidate("4")] * 3 + [candidate("5", 30)] * 2
    engine = scripted(texts)
    cfg = SelfCriticConfig(candidates=5, judge="fast", adaptive="agreement", seed=0,
                           schedule="pipelined", return_trace=True)
    result = await best_of_n(engine, PROMPT, QUESTION, SamplingOptions(max_tokens=100), cfg,
                             "req")
    out = result.report.to_dict()
    assert out["adaptive"]["started"] == 5 and out["adaptive"]["finished"] == 3
    assert out["adaptive"]["stopped"] == 2
    assert [s["reason"] for s in out["adaptive"]["stopped_candidates"]] == ["agreement"] * 2
    assert out["schedule"] == "rounds" and "adaptive" in out["notes"][0]
    assert len(result.ranked) == 3 and result.winner.text == candidate("4")
    stopped = sum(s["completion_tokens"] for s in out["adaptive"]["stopped_candidates"])
    assert result.report.candidate_usage.completion_tokens == 3 * 4 + stopped
    assert result.usage == result.report.candidate_usage + result.report.judge_usage


async def test_cancelling_the_run_closes_every_candidate() -> None:
    engine = ScriptedEngine(lambda r, i: candidate("4", 50), token_delay_s=0.01)
    task = asyncio.create_task(sample_adaptively(engine, request(4), config(4)))
    while len(engine.running) < 4:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not engine.running
    assert {f"req-cand{i}" for i in range(4)} <= set(engine.aborted)


@pytest.mark.parametrize(("fields", "message"), [
    ({"adaptive": "sometimes"}, "adaptive must be one of"),
    ({"adaptive": "agreement", "adaptive_wave": 9}, "adaptive_wave must be"),
    ({"adaptive_wave": 2}, "adaptive_wave needs"),
])
def test_config_rejects_bad_adaptive_settings(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelfCriticConfig(candidates=8, **fields)  # type: ignore[arg-type]
