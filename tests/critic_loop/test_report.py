"""The self-critic report's order agreement: counted over matches judged in both orders
whose two sides give different answers, the same in a response and in /v1/critique."""

from __future__ import annotations

from critic_loop.best_of_n import best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.critique import rank_responses
from critic_loop.engine import GenerationRequest, SamplingOptions
from critic_loop.runtime.engines.scripted import ScriptedEngine
from tests.support.simulated_judges import responses_in


def judge_knowing(right: str, candidates: list[str]):
    """Samples are `candidates`; the judge prefers `right` in either order and otherwise
    answers "1" (by position)."""
    def respond(request: GenerationRequest, index: int) -> str:
        if "[Response 1]" not in request.prompt:
            return candidates[index]
        _, second = responses_in(request.prompt)
        digit = "2" if second == right else "1"
        return digit if request.sampling.choices else f"<think>hm</think> \\boxed{{{digit}}}"
    return respond


async def run(candidates: list[str], **config: object):
    engine = ScriptedEngine(judge_knowing("51", candidates))
    critic = SelfCriticConfig(candidates=len(candidates), seed=3, **config)  # type: ignore[arg-type]
    return await best_of_n(engine, "17 * 3?", "What is 17 * 3?", SamplingOptions(), critic, "r")


async def test_order_agreement_counts_both_order_matches_of_different_answers() -> None:
    result = await run(["51", "41", "It is 60", "It is 70"])
    report = result.report
    # (51, 41) agreed; (60, 70) said "1" both times; the final, 51 against either, agreed
    assert [m.order_agreement for m in report.knockout.matches] == [True, False, True]
    assert report.order_agreement.to_dict() == {"agreed": 2, "judged": 3, "rate": 0.666667}
    assert report.to_dict()["order_agreement"] == report.order_agreement.to_dict()
    assert report.consistency == 2 / 3


async def test_pairs_that_give_the_same_answer_are_left_out() -> None:
    report = (await run(["51", "It is 51"], judge="fast")).report
    assert len(report.knockout.matches) == 1
    assert report.to_dict()["order_agreement"] == {"agreed": 0, "judged": 0, "rate": None}


async def test_critique_reports_order_agreement_over_its_matches() -> None:
    responses = ["41", "51"]
    engine = ScriptedEngine(judge_knowing("51", responses))
    result = await rank_responses(engine, "What is 17 * 3?", responses,
                                  SelfCriticConfig(judge="fast"), "c")
    assert result.winner == 1
    assert result.to_dict()["order_agreement"] == {"agreed": 1, "judged": 1, "rate": 1.0}
