"""Each selection strategy through `best_of_n` on the scripted engine: a position-biased
judge, a judge with p_comp 0.8, confidences that favour the right answer, tied votes."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest

from critic_loop.best_of_n import BestOfNResult, best_of_n
from critic_loop.config import SELECTS, SelfCriticConfig
from critic_loop.engine import Completion, GenerationRequest, SamplingOptions, TokenLogprob
from critic_loop.runtime.engines.scripted import ScriptedEngine
from critic_loop.selection.registry import STRATEGIES, get_strategy

PROMPT = "<|user|> What is 2+2?\n<|assistant|>"
RIGHT = "4"
Prefer = Callable[[str, str], int]
"""Which response (1 or 2) the judge prefers, given the texts shown first and second."""


def answer(value: str, confidence: float | None = None) -> Completion:
    """A candidate "the answer is <value>"; with `confidence`, every token's top-2
    logprobs are -c and -c, so its DeepConf token confidence is exactly c."""
    text = f"the answer is {value}"
    logprobs = None if confidence is None else tuple(
        TokenLogprob(w, -0.1, (("x", -confidence), ("y", -confidence))) for w in text.split())
    return Completion(0, text, len(text.split()), "stop", logprobs=logprobs)


def position_biased(first: str, second: str) -> int:
    return 1


def knows_the_answer(first: str, second: str) -> int:
    """Always prefers the right answer, in either order (p_comp = 1)."""
    return 1 if first.endswith(RIGHT) else 2 if second.endswith(RIGHT) else 1


def p_comp(p: float, rng: random.Random) -> Prefer:
    """Prefers the right answer with probability p in either position; a coin otherwise."""
    def prefer(first: str, second: str) -> int:
        right_first = first.endswith(RIGHT)
        if not right_first and not second.endswith(RIGHT):
            return rng.choice((1, 2))
        correct = rng.random() < p
        return 1 if right_first == correct else 2
    return prefer


def scripted(candidates: Sequence[Completion], prefer: Prefer) -> ScriptedEngine:
    texts = [c.text for c in candidates]

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


async def run(engine: ScriptedEngine, n: int, select: str, **config: object) -> BestOfNResult:
    config = {"seed": 3, "judge": "fast", "return_trace": True, **config}
    return await best_of_n(engine, PROMPT, "What is 2+2?", SamplingOptions(max_tokens=64),
                           SelfCriticConfig(candidates=n, select=select, **config), "req")


def judge_calls(engine: ScriptedEngine) -> int:
    return sum(1 for call in engine.generate_calls for r in call
               if not r.request_id.endswith("-cand"))


def winner_answer(result: BestOfNResult) -> str:
    return result.winner.text.split()[-1]


def test_the_registry_names_every_allowed_strategy() -> None:
    assert tuple(STRATEGIES) == SELECTS
    with pytest.raises(ValueError, match="'knockout', 'league', 'vote', 'confidence', 'hybrid'"):
        get_strategy("best")


def test_a_bad_select_lists_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="select must be one of 'knockout', 'league'"):
        SelfCriticConfig(select="tournament")
    with pytest.raises(ValueError, match="at most 16 candidates"):
        SelfCriticConfig(select="league", candidates=17)
    with pytest.raises(ValueError, match=r"judge_weight must be a number in \[0, 1\]"):
        SelfCriticConfig(judge_weight=1.5)


# -- a position-biased judge: the judge carries no information --------------------------
async def test_vote_and_confidence_never_call_the_judge() -> None:
    pool = [answer("5", 1.0), answer("4", 2.0), answer("4", 2.0), answer("6", 1.0)]
    for select in ("vote", "confidence"):
        engine = scripted(pool, position_biased)
        result = await run(engine, 4, select)
        assert winner_answer(result) == RIGHT and judge_calls(engine) == 0
        assert len(engine.generate_calls) == 1 and result.report.judge_calls == 0


async def test_a_position_biased_judge_does_not_move_the_hybrid() -> None:
    # "5" has more votes; the judge says "Response 1" in both orders: p = 0.5, no change.
    pool = [answer("4", 1.0), answer("5", 1.0), answer("5", 1.0)]
    engine = scripted(pool, position_biased)
    result = await run(engine, 3, "hybrid", judge_weight=1.0)
    final = result.report.to_dict()["trace"]["selection"]["final"]
    assert final["judge_preference"] == 0.5 and final["pair"] == [1, 0]
    assert winner_answer(result) == "5" and judge_calls(engine) == 2


async def test_under_a_position_biased_judge_the_league_falls_to_the_votes() -> None:
    # Every match splits; answer merging settles a split by votes, so the largest group
    # beats everyone and the rest fall to their coins.
    pool = [answer("6"), answer("5"), answer("4"), answer("4"), answer("4"), answer("7")]
    engine = scripted(pool, position_biased)
    result = await run(engine, 6, "league", merge="answer")
    report = result.report.to_dict()
    assert report["consistency"] == 0.0 and report["matches"]["split"] == 6
    assert winner_answer(result) == RIGHT
    top = report["trace"]["selection"]["entrants"][0]
    assert top["answer"] == RIGHT and top["wins"] == top["games"] == 3
    assert judge_calls(engine) == 6 * 2  # 4 entrants: 6 matches of K = 2


# -- a judge that knows the answer (p_comp = 1) and one with p_comp = 0.8 -----------------
async def test_the_league_ranks_by_win_rate_over_every_pair() -> None:
    pool = [answer(v) for v in ("5", "4", "6", "7")]
    engine = scripted(pool, knows_the_answer)
    result = await run(engine, 4, "league")
    table = result.report.to_dict()["trace"]["selection"]["entrants"]
    assert table[0]["representative"] == 1
    assert table[0]["wins"] == 3 and table[0]["win_rate"] == 1.0
    assert [t["games"] for t in table] == [3, 3, 3, 3]
    assert sum(t["wins"] for t in table) == 6
    assert result.report.rounds == 1 and result.report.judge_calls == 12
    # every pair met once, in one engine call
    [judged] = engine.generate_calls[1:]
    pairs = {r.request_id.rsplit("-j", 1)[0] for r in judged}
    assert pairs == {f"req-l-{a}-{b}" for a in range(4) for b in range(a + 1, 4)}


async def test_a_reliable_judge_overrules_the_votes_in_the_hybrid_final() -> None:
    pool = [answer("5", 1.0), answer("4", 1.0), answer("5", 1.0)]
    engine = scripted(pool, knows_the_answer)
    result = await run(engine, 3, "hybrid", judge_weight=1.0)
    final = result.report.to_dict()["trace"]["selection"]["final"]
    # scores: "5" (2/3 + 2/3)/2 = 2/3, "4" 1/3; the judge is sure (p = 0): 2/3 − 0.5 < 1/3 + 0.5
    assert final["scores"] == [pytest.approx(2 / 3, abs=1e-6), pytest.approx(1 / 3, abs=1e-6)]
    assert final["judge_preference"] == 0.0 and final["winner"] == 1
    assert winner_answer(result) == RIGHT
    assert [c.index for c in result.ranked] == [1, 0, 2]


async def test_a_judge_with_no_weight_is_not_called() -> None:
    pool = [answer("5", 1.0), answer("4", 1.0), answer("5", 1.0)]
    engine = scripted(pool, knows_the_answer)
    result = await run(engine, 3, "hybrid", judge_weight=0.0)
    assert judge_calls(engine) == 0 and winner_answer(result) == "5"
    assert "final" not in result.report.to_dict()["trace"]["selection"]


async def test_a_half_weighted_judge_overrules_only_a_small_margin() -> None:
    # "5": 3 of 4 votes, score 0.75 against 0.25: a margin of 0.5 that w = 0.5 cannot beat.
    pool = [answer("5", 1.0), answer("4", 1.0), answer("5", 1.0), answer("5", 1.0)]
    result = await run(scripted(pool, knows_the_answer), 4, "hybrid", judge_weight=0.5)
    final = result.report.to_dict()["trace"]["selection"]["final"]
    assert final["final_scores"] == [0.5, 0.5] and winner_answer(result) == "5"
    # 3 of 5 against 2 of 5: a margin of 0.2 that it does beat
    pool = [answer("5", 1.0), answer("4", 1.0), answer("5", 1.0), answer("4", 1.0),
            answer("5", 1.0)]
    result = await run(scripted(pool, knows_the_answer), 5, "hybrid", judge_weight=0.5)
    assert winner_answer(result) == RIGHT


@pytest.mark.parametrize("select", ["knockout", "league"])
async def test_a_p_comp_08_judge_finds_the_right_answer_far_above_chance(select: str) -> None:
    rng = random.Random(0)
    pool = [answer(v) for v in ("5", "6", "4", "7")]
    runs, right = 60, 0
    for seed in range(runs):
        result = await run(scripted(pool, p_comp(0.8, rng)), 4, select, seed=seed)
        right += winner_answer(result) == RIGHT
    # chance is 1/4; a match goes right with 0.64 + 0.32/2 = 0.8, the knockout needs two
    # (0.64), the league ranks by wins over three
    assert right / runs > 0.5


async def test_a_p_comp_08_judge_moves_the_hybrid_when_it_agrees_with_itself() -> None:
    rng = random.Random(1)
    pool = [answer("5", 1.0), answer("4", 1.0), answer("5", 1.0)]
    outcomes = []
    for seed in range(40):
        result = await run(scripted(pool, p_comp(0.8, rng)), 3, "hybrid", judge_weight=1.0,
                           seed=seed)
        final = result.report.to_dict()["trace"]["selection"]["final"]
        outcomes.append((final["judge_preference"], winner_answer(result)))
    # the right answer wins exactly when both orders preferred it (p(first) = 0)
    assert all((p == 0.0) == (won == RIGHT) for p, won in outcomes)
    assert 0 < sum(won == RIGHT for _, won in outcomes) < len(outcomes)


# -- confidences that favour the right answer --------------------------------------------
async def test_confidence_outweighs_more_votes_for_an_unsure_answer() -> None:
    # "5": 3 votes of confidence 1 (weight 3); "4": 2 votes of confidence 2 (weight 4)
    pool = [answer("5", 1.0), answer("4", 2.0), answer("5", 1.0), answer("4", 2.0),
            answer("5", 1.0)]
    voted = await run(scripted(pool, position_biased), 5, "vote")
    weighted = await run(scripted(pool, position_biased), 5, "confidence")
    assert winner_answer(voted) == "5" and winner_answer(weighted) == RIGHT
    groups = weighted.report.to_dict()["trace"]["selection"]["groups"]
    assert [(g["answer"], g["votes"], g["confidence"]) for g in groups] == [
        ("4", 2, 4.0), ("5", 3, 3.0)]
    assert [c.index for c in weighted.ranked] == [1, 3, 0, 2, 4]


async def test_confidence_picks_the_most_confident_when_no_answers_group() -> None:
    pool = [answer(v, c) for v, c in (("5", 1.0), ("6", 1.5), ("4", 3.0), ("7", 2.0))]
    result = await run(scripted(pool, position_biased), 4, "confidence")
    assert [c.index for c in result.ranked] == [2, 3, 1, 0]


async def test_the_hybrid_follows_confidence_when_votes_tie() -> None:
    pool = [answer("5", 1.0), answer("4", 3.0), answer("5", 1.0), answer("4", 3.0)]
    result = await run(scripted(pool, position_biased), 4, "hybrid", judge_weight=0.0)
    assert winner_answer(result) == RIGHT


# -- groups whose votes tie ---------------------------------------------------------------
async def test_tied_votes_go_to_confidence_then_to_the_lower_index() -> None:
    pool = [answer("5", 1.0), answer("4", 2.0), answer("5", 1.0), answer("4", 2.0)]
    result = await run(scripted(pool, position_biased), 4, "vote")
    assert winner_answer(result) == RIGHT and [c.index for c in result.ranked] == [1, 3, 0, 2]
    no_logprobs = [answer("5"), answer("4"), answer("5"), answer("4")]
    for select in ("vote", "confidence", "hybrid"):
        result = await run(scripted(no_logprobs, position_biased), 4, select, judge_weight=0)
        assert [c.index for c in result.ranked] == [0, 2, 1, 3], select
    details = result.report.to_dict()["trace"]["selection"]
    assert details["groups"][0]["confidence"] == 0.0


async def test_confidence_without_logprobs_says_so_and_ranks_by_votes() -> None:
    pool = [answer("5"), answer("4"), answer("4")]
    result = await run(scripted(pool, position_biased), 3, "confidence")
    details = result.report.to_dict()["trace"]["selection"]
    assert details["confidence_available"] is False and winner_answer(result) == RIGHT


async def test_a_cut_off_group_ranks_last_whatever_its_votes() -> None:
    cut = Completion(0, "the answer is 5", 4, "length")
    pool = [cut, cut, answer("4")]
    for select in ("vote", "confidence", "hybrid", "league"):
        result = await run(scripted(pool, knows_the_answer), 3, select, merge="answer")
        assert winner_answer(result) == RIGHT, select
