"""Answer-aware selection (`merge="answer"`) on the scripted engine: entrants, judge calls
saved, vote counts settling splits, truncated candidates losing, ranking and the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from critic_loop.best_of_n import BestOfNResult, best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Completion, GenerationRequest, SamplingOptions
from critic_loop.entrants import Draw
from critic_loop.runtime.engines.scripted import ScriptedEngine

PROMPT = "<|user|> How many?\n<|assistant|>"
Prefer = Callable[[str, str], int]
"""Which response (1 or 2) the judge prefers, given the texts shown first and second."""


def by_number(first: str, second: str) -> int:
    """Prefers the larger last number, in either order (an order-consistent judge); a
    response without one is worst, and the first of two such is preferred."""
    def value(text: str) -> float:
        word = text.split()[-1]
        return float(word) if word[0].isdigit() else float("-inf")
    return 1 if value(first) >= value(second) else 2


def always_first(first: str, second: str) -> int:
    """Pure position bias: with K = 2 every match splits."""
    return 1


def scripted(candidates: Sequence[str | Completion], prefer: Prefer = by_number
             ) -> ScriptedEngine:
    """Candidates come back as given; a judgment finds its two responses in the prompt."""
    texts = [c.text if isinstance(c, Completion) else c for c in candidates]

    def shown_at(prompt: str, marker: str) -> str:
        at = prompt.index(marker) + len(marker)
        return max((t for t in texts if prompt.startswith(t, at)), key=len)

    def respond(request: GenerationRequest, index: int) -> str | Completion:
        if request.request_id.endswith("-cand"):
            return candidates[index]
        said = prefer(shown_at(request.prompt, "[Response 1]\n"),
                      shown_at(request.prompt, "[Response 2]\n"))
        return str(said) if request.sampling.choices else f"<think>ok</think> \\boxed{{{said}}}"

    return ScriptedEngine(respond)


async def run(engine: ScriptedEngine, n: int, **config: object) -> BestOfNResult:
    config = {"seed": 3, "judge": "fast", "merge": "answer", **config}
    return await best_of_n(engine, PROMPT, "How many?", SamplingOptions(max_tokens=64),
                           SelfCriticConfig(candidates=n, **config), "req")


def judge_requests(engine: ScriptedEngine) -> list[GenerationRequest]:
    return [r for call in engine.generate_calls for r in call if not r.request_id.endswith("-cand")]


CANDIDATES = ["so it is 4", "I get 4", "the answer: 5", "4", "that makes 6", "maybe 5",
              "no idea", "no  idea"]
"""Answers 4, 4, 5, 4, 6, 5 and twice no answer (the same text up to whitespace)."""


@pytest.mark.parametrize("judge", ["fast", "reason"])
async def test_only_distinct_answers_are_judged(judge: str) -> None:
    engine = scripted(CANDIDATES)
    result = await run(engine, 8, judge=judge)
    report = result.report
    assert [e.answer for e in report.knockout.entrants] == ["4", "5", "6", None]
    assert [e.members for e in report.knockout.entrants] == [(0, 1, 3), (2, 5), (4,), (6, 7)]
    # 4 entrants: 3 matches of K = 2; text merging would have judged 7 distinct texts.
    assert report.judge_calls == len(judge_requests(engine)) == 3 * 2
    assert report.judge_calls_saved == (7 - 1) * 2 - 6
    assert result.winner.text == "that makes 6"
    out = report.to_dict()
    assert (out["merge"], out["entrants"], out["judge_calls_saved"]) == ("answer", 4, 6)
    assert out["rounds"] == 2 and "notes" not in out


async def test_one_answer_needs_no_judge() -> None:
    engine = scripted(["it is 7", "7", "I think 7.", "7.0 of course"])
    result = await run(engine, 4, comparisons=3)
    assert len(engine.generate_calls) == 1 and result.report.judge_calls == 0
    assert result.report.judge_calls_saved == (4 - 1) * 3
    assert [c.index for c in result.ranked] == [0, 1, 2, 3]


@pytest.mark.parametrize("judge", ["fast", "reason"])
async def test_a_split_goes_to_the_answer_more_candidates_gave(judge: str) -> None:
    candidates = ["it is 9", "so 7", "we get 7", "answer 7"]
    for merge, decided_by, winner in (("answer", "votes", 1), ("text", "coin", None)):
        result = await run(scripted(candidates, always_first), 4, judge=judge, merge=merge)
        final = result.report.knockout.matches[-1]
        assert final.outcome == "split" and final.decided_by == decided_by
        if winner is not None:
            assert result.winner.index == winner
            assert result.report.to_dict()["decided_by"]["votes"] == 1
    # Equal vote counts leave the split to the coin.
    result = await run(scripted(["it is 9", "so 7"], always_first), 2, judge=judge)
    assert result.report.knockout.matches[-1].decided_by == "coin"


async def test_a_truncated_candidate_never_beats_a_complete_one() -> None:
    # The judge prefers the larger number, and the largest was cut off by the token limit.
    candidates: list[str | Completion] = [
        Completion(0, "so far 99", 64, "length"), "it is 3", "it is 5",
        Completion(3, "maybe 5", 64, "length"), Completion(4, "perhaps 8", 64, "length")]
    engine = scripted(candidates)
    result = await run(engine, 5, return_trace=True)
    report = result.report
    entrants = {e.answer: e for e in report.knockout.entrants}
    assert entrants["5"].representative == 2 and entrants["5"].members == (2, 3)
    assert entrants["99"].truncated and entrants["8"].truncated and not entrants["5"].truncated
    assert result.winner.index == 2
    # Complete entrants rank before truncated ones; no judge saw a complete/truncated pair.
    assert [c.index for c in result.ranked][:3] == [2, 3, 1]
    assert {result.ranked[3].index, result.ranked[4].index} == {0, 4}
    cut = {0, 4}
    for match in report.knockout.matches:
        assert (match.pair[0] in cut) == (match.pair[1] in cut)
    walkovers = [w for r in report.knockout.rounds for w in r.walkovers]
    assert walkovers and all(w.loser in cut and w.winner not in cut for w in walkovers)
    trace = report.to_dict()["trace"]
    assert any("walkovers" in r for r in trace["rounds"])
    assert trace["entrants"][0] == {"answer": "5", "representative": 2, "members": [2, 3],
                                    "truncated": False}


async def test_ranking_lists_entrants_in_tournament_order_representative_first() -> None:
    candidates = ["we get 2", "it is 8", "so 2", "say 5", "maybe 8", "try 5", "just 1"]
    engine = scripted(candidates)
    result = await run(engine, 7, return_trace=True)
    knockout = result.report.knockout
    assert [c.index for c in result.ranked][:2] == [1, 4]  # the winning answer, all members
    reps = [c.index for c in result.ranked if knockout.duplicate_of[c.index] is None]
    assert [result.ranked[i].index for i in range(len(result.ranked))] == [
        m for r in reps for m in next(e.members for e in knockout.entrants
                                      if e.representative == r)]
    assert result.report.to_dict()["trace"]["entrants"][0]["answer"] == "8"
    assert sorted(c.index for c in result.ranked) == list(range(7))


async def test_pipelined_falls_back_to_rounds_and_says_so() -> None:
    engine = scripted(["it is 3", "so 3", "maybe 4"])
    result = await run(engine, 3, schedule="pipelined")
    out = result.report.to_dict()
    assert out["schedule"] == "rounds" and "'pipelined'" in out["notes"][0]
    assert engine.generate_calls[0][0].request_id == "req-cand"  # no stream was opened


async def test_answer_format_and_pattern_decide_what_merges() -> None:
    candidates = ["(A) 5 or (B) 6? The answer is B", "I pick (B)", "Answer: A"]
    draw = Draw.of_answers([Completion(i, t, 3, "stop") for i, t in enumerate(candidates)],
                           "choice")
    assert [e.answer for e in draw.entrants] == ["B", "A"]
    by_pattern = Draw.of_answers([Completion(0, "x=1 y=2", 3, "stop"),
                                  Completion(1, "y=2 x=3", 3, "stop")], pattern=r"y=(\d)")
    assert [e.members for e in by_pattern.entrants] == [(0, 1)]


async def test_text_merge_reports_no_saving() -> None:
    result = await run(scripted(CANDIDATES), 8, merge="text")
    out = result.report.to_dict()
    assert (out["merge"], out["entrants"], out["judge_calls_saved"]) == ("text", 7, 0)
    assert out["judge_calls"] == 6 * 2
