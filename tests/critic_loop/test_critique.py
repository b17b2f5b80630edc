"""`rank_responses`: what `/v1/critique` returns for two responses and for more."""

from __future__ import annotations

import math

import pytest

from critic_loop.config import SelfCriticConfig
from critic_loop.critique import rank_responses
from critic_loop.engine import Completion, GenerationRequest
from critic_loop.runtime.engines.scripted import ScriptedEngine, echo_responder
from tests.support.simulated_judges import scored_responder

QUESTION = "Which answer is right?"


async def test_two_responses_play_one_match() -> None:
    responses = ["answer 2", "answer 5"]
    engine = ScriptedEngine(scored_responder(responses))
    result = await rank_responses(engine, QUESTION, responses, SelfCriticConfig(seed=1), "c1")
    assert (result.winner, result.ranking, result.preference) == (1, (1, 0), (0.0, 1.0))
    assert [j.order for j in result.judgments] == [(0, 1), (1, 0)]
    assert [r.request_id for r in engine.generate_calls[0]] == ["c1-r1-m0-j0", "c1-r1-m0-j1"]
    out = result.to_dict()
    assert set(out) == {"winner", "ranking", "preference", "judgments", "order_agreement",
                        "usage"}
    assert set(out["judgments"][0]) >= {"order", "verdict", "reasoning", "text",
                                        "probabilities"}
    assert out["usage"]["total_tokens"] == sum(j.prompt_tokens + j.completion_tokens
                                               for j in result.judgments)


async def test_fast_preference_is_the_summed_probability_share() -> None:
    def respond(request: GenerationRequest, index: int) -> Completion:
        return Completion(0, "1", 1, "length",
                          choice_logprobs={"1": math.log(0.7), "2": math.log(0.3)})
    result = await rank_responses(ScriptedEngine(respond), QUESTION, ["a", "b"],
                                  SelfCriticConfig(judge="fast", seed=1), "c")
    # Each response got 0.7 when shown first and 0.3 when second: an exact tie.
    assert result.preference == pytest.approx((0.5, 0.5))
    assert result.winner is None and result.judgments[0].probabilities == pytest.approx(
        (0.7, 0.3))


async def test_a_tie_has_no_winner() -> None:
    result = await rank_responses(ScriptedEngine(echo_responder), QUESTION, ["a", "b"],
                                  SelfCriticConfig(judge="fast"), "c")
    assert result.winner is None and result.preference == (0.5, 0.5)
    assert sorted(result.ranking) == [0, 1]


async def test_identical_responses_tie_without_judging() -> None:
    engine = ScriptedEngine(echo_responder)
    result = await rank_responses(engine, QUESTION, ["same", " same "], SelfCriticConfig(), "c")
    assert (result.winner, result.ranking, result.judgments) == (None, (0, 1), ())
    assert engine.generate_calls == []


async def test_more_responses_run_a_knockout() -> None:
    responses = [f"answer {s}" for s in (3, 8, 1, 6, 2)]
    engine = ScriptedEngine(scored_responder(responses))
    config = SelfCriticConfig(judge="fast", comparisons=4, seed=9)
    result = await rank_responses(engine, QUESTION, responses, config, "c")
    assert result.winner == 1 and result.ranking[0] == 1
    assert len(result.judgments) == (5 - 1) * 4
    assert result.preference[1] == 1.0 and all(0 <= p <= 1 for p in result.preference)
    assert result.report.rounds == 3


@pytest.mark.parametrize("responses", [[], ["only one"], ["r"] * 129])
async def test_response_count_is_checked(responses: list[str]) -> None:
    with pytest.raises(ValueError, match="responses must hold from 2 to 128"):
        await rank_responses(ScriptedEngine(), QUESTION, responses, SelfCriticConfig(), "c")
