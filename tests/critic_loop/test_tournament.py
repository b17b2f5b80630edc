"""The knockout: bracket shape, byes, merging, ranking, determinism, one call per round."""

from __future__ import annotations

import math

import pytest

from critic_loop.best_of_n import BestOfNResult, best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Completion, GenerationRequest, SamplingOptions
from critic_loop.runtime.engines.scripted import ScriptedEngine
from critic_loop.tournament import Bracket, find_duplicates, normalise
from tests.support.simulated_judges import responses_in, score_of, scored_responder


async def run(texts: list[str], responder=None, **config) -> tuple[ScriptedEngine,
                                                                     BestOfNResult]:
    engine = ScriptedEngine(responder or scored_responder(texts))
    config.setdefault("seed", 7)
    result = await best_of_n(engine, "Question?", "Question?", SamplingOptions(),
                             SelfCriticConfig(candidates=len(texts), **config), "req")
    return engine, result


def rounds_for(n: int) -> int:
    return math.ceil(math.log2(n)) if n > 1 else 0


@pytest.mark.parametrize("n", range(1, 18))
def test_bracket_shape(n: int) -> None:
    for seed in range(6):
        bracket = Bracket.build(n, seed)
        assert len(bracket.rounds) == rounds_for(n)
        entries = [(0, c) for c in range(n)]
        for number, (matches, bye) in enumerate(zip(bracket.rounds, bracket.byes,
                                                    strict=True), start=1):
            assert len(matches) == len(entries) // 2
            assert (bye is not None) == (len(entries) % 2 == 1)
            playing = [side for m in matches for side in m.sides]
            assert sorted(playing + ([bye] if bye else [])) == sorted(entries)
            assert all(m.round == number for m in matches)
            entries = [m.ref for m in matches] + ([bye] if bye else [])
        assert entries == [bracket.final]


@pytest.mark.parametrize("n", range(1, 18))
@pytest.mark.parametrize("judge", ["reason", "fast"])
async def test_knockout_cost_and_winner_for_every_size(n: int, judge: str) -> None:
    scores = [(7 * i + 3) % 17 for i in range(n)]  # distinct for n <= 17
    texts = [f"answer {s}" for s in scores]
    engine, result = await run(texts, judge=judge, comparisons=2)
    report = result.report
    assert result.winner.text == f"answer {max(scores)}"
    assert sorted(c.index for c in result.ranked) == list(range(n))
    assert report.rounds == rounds_for(n)
    assert report.judge_calls == (n - 1) * 2 <= SelfCriticConfig(candidates=n).max_judge_calls
    # One engine call for the candidates, then exactly one per round holding all of it.
    assert len(engine.generate_calls) == 1 + rounds_for(n)
    for record, call in zip(report.knockout.rounds, engine.generate_calls[1:], strict=True):
        assert len(call) == 2 * len(record.matches)
        assert {r.request_id.rsplit("-", 1)[0] for r in call} == {
            f"req-r{record.number}-m{i}" for i in range(len(call) // 2)}
    byes = [len(r.advanced) for r in report.knockout.rounds]
    slots = n
    for advanced in byes:
        assert advanced == slots % 2
        slots = (slots + 1) // 2


async def test_ranking_orders_by_elimination_round_then_preference_then_index() -> None:
    texts = [f"answer {s}" for s in (5, 1, 7, 3, 8, 2, 6, 4)]

    def soft(request: GenerationRequest, index: int) -> str | Completion:
        if not request.sampling.choices:
            return texts[index]
        first, second = (score_of(t) for t in responses_in(request.prompt))
        p_first = 0.5 + (first - second) / 20  # closer scores, closer call
        return Completion(0, "1", 1, "length", choice_logprobs={
            "1": math.log(p_first), "2": math.log(1 - p_first)})
    _, result = await run(texts, soft, judge="fast")
    knockout = result.report.knockout
    eliminated = {m.loser: r.number for r in knockout.rounds for m in r.matches}
    ranking = list(knockout.ranking)
    assert ranking[0] == knockout.winner == 4
    assert [eliminated[c] for c in ranking[1:]] == [3, 2, 2, 1, 1, 1, 1]
    for tier in (ranking[2:4], ranking[4:]):
        shares = [knockout.preference[c] for c in tier]
        assert shares == sorted(shares, reverse=True)
    assert len(set(knockout.preference)) > 3  # the shares really differ


async def test_ties_within_a_round_fall_back_to_index() -> None:
    texts = [f"answer {s}" for s in (1, 2, 3, 4)]
    _, result = await run(texts)  # consistent votes: every loser has share 0
    assert [c.index for c in result.ranked] == [3, 1, 0, 2]


def test_normalise_and_find_duplicates() -> None:
    assert normalise(" a\tb \n c ") == "a b c"
    assert find_duplicates(["x", "y", "x ", " y\n", "z", "x"]) == (None, None, 0, 1, None, 0)
    assert find_duplicates(["same"] * 3) == (None, 0, 0)


async def test_identical_candidates_are_merged_before_judging() -> None:
    texts = ["answer 1", "answer 5", " answer  1\n", "answer 3", "answer 5", "answer 2"]
    _, result = await run(texts, comparisons=2)
    knockout = result.report.knockout
    assert knockout.duplicate_of == (None, None, 0, None, 1, None)
    judged = {c for m in knockout.matches for j in m.judgments for c in j.order}
    assert judged <= {0, 1, 3, 5}
    assert result.report.judge_calls == (4 - 1) * 2
    ranking = list(knockout.ranking)
    assert ranking[:2] == [1, 4]  # the winner, then its copy
    assert ranking.index(2) == ranking.index(0) + 1
    assert knockout.preference[2] == knockout.preference[0]
    assert knockout.preference[4] == knockout.preference[1]


async def test_all_identical_candidates_need_no_judge() -> None:
    engine, result = await run(["same answer 1"] * 5)
    assert len(engine.generate_calls) == 1  # the candidates only
    report = result.report
    assert (report.rounds, report.judge_calls, report.consistency) == (0, 0, None)
    assert [c.index for c in result.ranked] == [0, 1, 2, 3, 4]


async def test_same_seed_same_tournament() -> None:
    texts = [f"answer {s}" for s in (4, 9, 2, 7, 5, 1, 8)]

    def quirky(request: GenerationRequest, index: int) -> str:
        if "[Response 1]" not in request.prompt:
            return texts[index]
        return "\\boxed{1}" if len(request.prompt) % 3 else "\\boxed{2}"  # arbitrary, fixed

    runs = [await run(texts, quirky, seed=seed, judge_temperature=0.5) for seed in (3, 3, 4)]
    traces = [[(r.request_id, r.prompt, r.sampling.seed) for call in engine.generate_calls
               for r in call] for engine, _ in runs]
    rankings = [[c.index for c in result.ranked] for _, result in runs]
    assert traces[0] == traces[1] and rankings[0] == rankings[1]
    assert traces[0] != traces[2]


def test_bye_placement_depends_on_the_seed() -> None:
    byes = {Bracket.build(5, seed).byes for seed in range(20)}
    assert len(byes) > 3
    assert Bracket.build(5, 11) == Bracket.build(5, 11)


def test_bracket_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Bracket.build(0, 1)
