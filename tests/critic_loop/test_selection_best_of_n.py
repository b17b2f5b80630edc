"""What selection changes in `best_of_n`: the greedy candidate, the logprobs a strategy
requests (and the client never sees unless asked), and the report and trace."""

from __future__ import annotations

import pytest

from critic_loop.best_of_n import best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Completion, GenerationRequest, SamplingOptions, TokenLogprob
from critic_loop.runtime.engines.scripted import ScriptedEngine
from critic_loop.selection.signals import TOP_LOGPROBS

PROMPT = "<|user|> What is 2+2?\n<|assistant|>"
GREEDY = "greedy says 4"


def responder(request: GenerationRequest, index: int) -> str | Completion:
    """Candidates as the sampling asks: greedy text at temperature 0, else a numbered
    sample; with logprobs asked, each token has as many alternatives as asked."""
    if request.sampling.choices:
        return "1"
    text = GREEDY if request.sampling.temperature == 0 else f"sample says {index}"
    k = request.sampling.logprobs
    logprobs = None if k is None else tuple(
        TokenLogprob(w, -0.5, tuple((f"alt{j}", -0.5 - j) for j in range(k)))
        for w in text.split())
    return Completion(index, text, len(text.split()), "stop", logprobs=logprobs)


async def run(engine: ScriptedEngine, sampling: SamplingOptions, **config: object):
    config = {"seed": 1, "judge": "fast", **config}
    return await best_of_n(engine, PROMPT, "What is 2+2?", sampling,
                           SelfCriticConfig(**config), "req")


@pytest.mark.parametrize("select", ["knockout", "vote", "hybrid"])
async def test_include_greedy_puts_the_greedy_decode_at_index_0(select: str) -> None:
    engine = ScriptedEngine(responder)
    sampling = SamplingOptions(max_tokens=16, temperature=0.8, top_p=0.9, seed=4)
    result = await run(engine, sampling, candidates=4, include_greedy=True, select=select,
                       schedule="pipelined", return_trace=True)
    greedy, sampled = engine.generate_calls[0]  # submitted together, so they batch
    assert (greedy.request_id, greedy.n, greedy.sampling.temperature) == ("req-greedy", 1, 0)
    assert (sampled.request_id, sampled.n, sampled.sampling.temperature) == ("req-cand", 3, 0.8)
    assert greedy.sampling.top_p == sampled.sampling.top_p == 0.9  # the rest as asked
    trace = result.report.to_dict()["trace"]
    assert [c["text"] for c in trace["candidates"]] == [
        GREEDY, "sample says 0", "sample says 1", "sample says 2"]
    assert sorted(c.index for c in result.ranked) == [0, 1, 2, 3]
    assert result.report.to_dict()["include_greedy"] is True
    assert result.report.candidate_usage.prompt_tokens == 2 * engine.count_tokens(PROMPT)


async def test_one_greedy_candidate_is_the_whole_pool() -> None:
    engine = ScriptedEngine(responder)
    result = await run(engine, SamplingOptions(), candidates=1, include_greedy=True)
    [[greedy]] = engine.generate_calls
    assert greedy.request_id == "req-greedy" and result.winner.text == GREEDY


async def test_a_strategy_reading_confidence_samples_top_k_but_returns_what_was_asked() -> None:
    engine = ScriptedEngine(responder)
    result = await run(engine, SamplingOptions(temperature=0.8), candidates=3, select="vote",
                       return_trace=True)
    [candidates] = engine.generate_calls[0]
    assert candidates.sampling.logprobs == TOP_LOGPROBS
    assert all(c.logprobs is None for c in result.ranked)  # the client asked for none
    trace = result.report.to_dict()["trace"]
    signals = trace["candidates"][0]["signals"]
    # each token: top-20 logprobs −0.5 … −19.5, so C = 10 everywhere
    assert signals["lowest_group_confidence"] == signals["mean_confidence"] == 10.0
    assert signals["mean_logprob"] == -0.5 and signals["tokens"] == 3
    assert trace["selection"]["strategy"] == "vote"
    assert [g["votes"] for g in trace["selection"]["groups"]] == [1, 1, 1]

    engine = ScriptedEngine(responder)
    result = await run(engine, SamplingOptions(temperature=0.8, logprobs=2), candidates=3,
                       select="confidence")
    assert engine.generate_calls[0][0].sampling.logprobs == TOP_LOGPROBS
    assert all(len(t.top) == 2 for c in result.ranked for t in c.logprobs or ())
    assert all(c.logprobs for c in result.ranked)


async def test_a_knockout_asks_for_no_logprobs_unless_traced() -> None:
    engine = ScriptedEngine(responder)
    result = await run(engine, SamplingOptions(), candidates=3)
    assert engine.generate_calls[0][0].sampling.logprobs is None
    out = result.report.to_dict()
    assert out["select"] == "knockout" and out["include_greedy"] is False
    engine = ScriptedEngine(responder)
    result = await run(engine, SamplingOptions(), candidates=3, return_trace=True)
    assert engine.generate_calls[0][0].sampling.logprobs == TOP_LOGPROBS
    trace = result.report.to_dict()["trace"]
    assert all(c["signals"]["tokens"] == 3 for c in trace["candidates"])
    assert trace["selection"] == {"strategy": "knockout"}


async def test_only_a_knockout_of_texts_runs_pipelined() -> None:
    engine = ScriptedEngine(responder)
    result = await run(engine, SamplingOptions(), candidates=3, select="league",
                       schedule="pipelined")
    out = result.report.to_dict()
    assert out["schedule"] == "rounds" and "notes" not in out
    result = await run(ScriptedEngine(responder), SamplingOptions(), candidates=3,
                       include_greedy=True, schedule="pipelined")
    assert "include_greedy" in result.report.to_dict()["notes"][0]


def test_admission_counts_each_strategys_judging() -> None:
    def cost(select: str, **more: object) -> tuple[int, int, int]:
        c = SelfCriticConfig(candidates=6, judge="fast", select=select, **more)
        return c.max_matches, c.max_judge_calls, c.peak_judge_sequences
    assert cost("knockout") == (5, 10, 6)
    assert cost("league") == (15, 30, 30)
    assert cost("hybrid") == (1, 2, 2)
    assert cost("hybrid", judge_weight=0.0) == (0, 0, 0)
    assert cost("vote") == cost("confidence") == (0, 0, 0)


async def test_a_given_grouping_replaces_answer_extraction() -> None:
    # Texts differ in every number, so extraction makes four singletons; a grouping by
    # behaviour (here: the number's parity) puts 1, 3 and 5 together.
    texts = ["def f(): return 1", "def f(): return 2", "def f(): return 3",
             "def f(): return 5"]
    engine = ScriptedEngine(lambda request, index: texts[index])

    def by_parity(completions):
        return [f"odd={int(c.text.split()[-1]) % 2}" for c in completions]

    result = await best_of_n(engine, PROMPT, "Write f.", SamplingOptions(),
                             SelfCriticConfig(candidates=4, select="vote", seed=1,
                                              return_trace=True), "req", group_by=by_parity)
    assert [c.index for c in result.ranked] == [0, 2, 3, 1]
    groups = result.report.to_dict()["trace"]["selection"]["groups"]
    assert [(g["answer"], g["votes"]) for g in groups] == [("odd=1", 3), ("odd=0", 1)]
    with pytest.raises(ValueError, match="2 keys for 4 completions"):
        await best_of_n(ScriptedEngine(lambda request, index: texts[index]), PROMPT, "Write f.",
                        SamplingOptions(), SelfCriticConfig(candidates=4, select="vote"), "req",
                        group_by=lambda completions: ["a", "b"])
