"""`eval select`'s core on the scripted engine: the server's strategies on fixed pools,
graded, with the paired figures worked out by hand in `select_cases`."""

from __future__ import annotations

from pathlib import Path

import pytest

from critic_loop.answers import grade
from evaluation.candidates import load_candidates
from evaluation.dataset import Question, load_questions
from evaluation.select_report import best_row, pool_figures, strategy_rows
from evaluation.select_run import QuestionPicks, select_question
from evaluation.selectors import SelectSettings, parse_selector, parse_selectors
from tests.support.select_cases import judge_engine, write_case

NAMES = ("knockout-fast", "vote", "confidence", "hybrid-fast")


async def run_case(tmp_path: Path, knows: bool, include_greedy: bool = False,
                   names: tuple[str, ...] = NAMES) -> list[QuestionPicks]:
    data, cands = write_case(tmp_path)
    sets = load_candidates(cands)
    engine = judge_engine(knows)
    settings = SelectSettings(n=4, include_greedy=include_greedy, judge_weight=1.0)
    return [await select_question(engine, q, [{"role": "user", "content": q.question}],
                                  sets[q.id], [parse_selector(n) for n in names], settings)
            for q in load_questions(data)]


async def test_paired_figures_are_the_hand_worked_ones(tmp_path: Path) -> None:
    results = await run_case(tmp_path, knows=True)
    pool = pool_figures(results)
    assert (pool.questions, pool.pass_at_n, pool.greedy_accuracy) == (3, 1.0, pytest.approx(2 / 3))
    assert pool.mean_sample_accuracy == pytest.approx(1 / 3)
    rows = {r.strategy: r for r in strategy_rows(results, NAMES)}
    assert rows["vote"].correct == 1 and rows["confidence"].correct == 2
    assert rows["knockout-fast"].correct == 3
    assert rows["confidence"].selection_efficiency == pytest.approx(2 / 3)
    assert (rows["vote"].wins_vs_greedy, rows["vote"].losses_vs_greedy) == (0, 1)
    assert (rows["confidence"].wins_vs_greedy, rows["confidence"].losses_vs_greedy) == (1, 1)
    assert (rows["knockout-fast"].wins_vs_greedy, rows["knockout-fast"].losses_vs_greedy) == (1, 0)
    assert rows["vote"].judge_calls_per_question == 0 == rows["confidence"].judge_tokens_per_question
    # every pool repeats one text, judged once (merge "text"): 3 entrants, 2 matches of K=2
    assert rows["knockout-fast"].judge_calls_per_question == 4
    assert rows["knockout-fast"].p_comp == 1.0 and rows["knockout-fast"].right_wrong_matches > 0
    # hybrid asks the judge once (top two), and a judge at weight 1 that is sure decides
    assert rows["hybrid-fast"].judge_calls_per_question == 2
    assert rows["hybrid-fast"].correct == 3
    # knockout and hybrid tie at 3/3: the one with fewer judge calls is the best
    assert best_row(list(rows.values())).strategy == "hybrid-fast"


async def test_vote_and_confidence_picks_are_graded_on_their_winners(tmp_path: Path) -> None:
    results = await run_case(tmp_path, knows=True, names=("vote", "confidence"))
    by = {r.question_id: {p.strategy: p for p in r.picks} for r in results}
    assert [by[q]["vote"].winner for q in ("q1", "q2", "q3")] == [0, 1, 0]
    assert [by[q]["confidence"].winner for q in ("q1", "q2", "q3")] == [0, 0, 0]
    assert [by[q]["confidence"].correct for q in ("q1", "q2", "q3")] == [False, True, True]


async def test_a_position_biased_judge_never_agrees_with_itself(tmp_path: Path) -> None:
    results = await run_case(tmp_path, knows=False, names=("knockout-fast",))
    [row] = strategy_rows(results, ["knockout-fast"])
    assert row.differing_matches > 0 and row.order_agreement == 0.0


async def test_include_greedy_pools_hold_the_greedy_candidate_first(tmp_path: Path) -> None:
    results = await run_case(tmp_path, knows=True, include_greedy=True, names=("vote",))
    assert [r.correct[0] for r in results] == [r.greedy_correct for r in results]
    assert [r.sampled for r in results] == [(1, 2, 3)] * 3
    # q1's pool is 4 (greedy), 5, 5, 4: a tie of two votes, the 5s' confidence wins it
    assert results[0].answers == ("4", "5", "5", "4")
    assert results[0].picks[0].winner == 1 and not results[0].picks[0].correct
    # the sampled members only: 5 5 4, 7 8 8, 2 2 1
    assert pool_figures(results).mean_sample_accuracy == pytest.approx((1 / 3 + 1 / 3 + 2 / 3) / 3)


def test_strategy_names_are_checked() -> None:
    assert [s.name for s in parse_selectors("knockout-reason-answer, vote")] == [
        "knockout-reason-answer", "vote"]
    for bad, message in (("knockout", "name its mode"), ("vote-fast", "calls no judge"),
                         ("best", "must start with"), ("hybrid-fast-answer", "drop"),
                         ("vote,vote", "twice")):
        with pytest.raises(ValueError, match=message):
            parse_selectors(bad)


def test_the_text_grader_is_the_servers() -> None:
    question = Question("q", "?", "4")
    assert grade("the answer is 4", question.answer, question.grader)
