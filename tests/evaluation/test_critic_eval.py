"""Critic evaluation against the Engine protocol, on scripted judges with known behaviour."""

from __future__ import annotations

import math
import re

import pytest

from critic_loop.engine import Completion, GenerationRequest
from critic_loop.engines.scripted import ScriptedEngine
from evaluation.critic_eval import judge_pairs, score
from evaluation.pairs import PreferencePair
from evaluation.stats import mean_ci95

PAIRS = [PreferencePair(f"What is {i} + 1?", f"{i + 1}.", f"{i + 2}.", 1) for i in range(10)]
PAIRS += [p.swapped() for p in PAIRS]  # labels balanced: 10 × 1, 10 × 2
# Reason mode has its suffix after the responses; fast mode ends with the second one.
_RESPONSES = re.compile(r"\[Response 1\]\n(.*?)\n\n\[Response 2\]\n(.*?)(?:\n\n|$)", re.DOTALL)


def oracle(request: GenerationRequest, index: int) -> str:
    """A perfect judge: picks the response equal to i + 1."""
    question = int(re.search(r"What is (\d+) \+ 1", request.prompt).group(1))
    first, _ = _RESPONSES.search(request.prompt).groups()
    right = "1" if first == f"{question + 1}." else "2"
    return right if request.sampling.choices else f"<think>sum</think> \\boxed{{{right}}}"


def always_first(request: GenerationRequest, index: int) -> str:
    return "1" if request.sampling.choices else "\\boxed{1}"


def rambler(request: GenerationRequest, index: int) -> str:
    return "I cannot decide."


async def test_perfect_judge_in_both_modes() -> None:
    for mode in ("fast", "reason"):
        engine = ScriptedEngine(oracle)
        report = score(await judge_pairs(engine, PAIRS, mode=mode, chunk=7), model="o", mode=mode)
        assert report.accuracy == 1.0 and report.consistency == 1.0
        assert report.invalid_rate == 0.0 and report.first_position_rate == 0.5
        assert report.accuracy_ci95 == (1.0, 1.0)
        sent = [r for call in engine.generate_calls for r in call]
        assert len(sent) == 2 * len(PAIRS)  # both orders, nothing else
        if mode == "fast":
            assert all(r.sampling.max_tokens == 1 and r.sampling.choices == ("1", "2")
                       for r in sent)
        assert all(r.sampling.temperature == 0.0 for r in sent)  # greedy, as the paper


async def test_position_biased_judge_is_half_right_and_never_consistent() -> None:
    verdicts = await judge_pairs(ScriptedEngine(always_first), PAIRS, mode="fast")
    report = score(verdicts, model="b", mode="fast")
    assert report.accuracy == 0.5 and report.consistency == 0.0
    assert report.accuracy_as_given == 0.5 and report.accuracy_swapped == 0.5
    assert report.first_position_rate == 1.0 and report.consistent_accuracy == 0.0


async def test_invalid_votes_count_as_wrong_and_are_reported() -> None:
    report = score(await judge_pairs(ScriptedEngine(rambler), PAIRS, mode="reason"),
                   model="r", mode="reason")
    assert report.accuracy == 0.0 and report.invalid_rate == 1.0
    assert report.valid_accuracy is None
    assert "invalid 100.0%" in report.summary()


async def test_fast_mode_reports_the_probability_of_the_right_response() -> None:
    def unsure(request: GenerationRequest, index: int) -> Completion:
        logprobs = {"1": math.log(0.7), "2": math.log(0.3)}
        return Completion(0, "1", 1, "length", choice_logprobs=logprobs)

    verdicts = await judge_pairs(ScriptedEngine(unsure), PAIRS[:1], mode="fast")
    assert verdicts[0].as_given == 1 and verdicts[0].swapped == 2
    assert verdicts[0].probabilities == pytest.approx((0.7, 0.3))


def test_confidence_interval_narrows_with_more_pairs() -> None:
    low_10, high_10 = mean_ci95([1.0, 0.0] * 5)
    low_100, high_100 = mean_ci95([1.0, 0.0] * 50)
    assert low_10 < low_100 < 0.5 < high_100 < high_10


# -- the paper's rows: the whole judge prompt given, responses inside ----------------------
def _given(i: int, right: int, images: tuple = ()) -> PreferencePair:
    first, second = (f"{i + 1}.", f"{i + 2}.") if right == 1 else (f"{i + 2}.", f"{i + 1}.")
    marks = "<image> " * len(images)
    prompt = (f"{marks}Question: what is {i} + 1? Response 1: {first} Response 2: {second} "
              "Think, then put the better response's number in \\boxed{}.")
    return PreferencePair(prompt, "", "", right, images, given_prompt=True)


def given_oracle(request: GenerationRequest, index: int) -> str:
    """Reads a given prompt as a person would and boxes the right response."""
    match = re.search(r"what is (\d+) \+ 1\? Response 1: (\S+)", request.prompt)
    right = "1" if match.group(2) == f"{int(match.group(1)) + 1}." else "2"
    return right if request.sampling.choices else f"<think>add</think> \\boxed{{{right}}}"


async def test_given_judge_prompts_are_judged_once_as_given() -> None:
    given = [_given(i, 1 + i % 2) for i in range(6)]
    mixed = [given[0], PAIRS[0], given[1], PAIRS[1], *given[2:]]
    def either(request: GenerationRequest, index: int) -> str:
        return (given_oracle if "Question:" in request.prompt else oracle)(request, index)

    engine = ScriptedEngine(either)
    verdicts = await judge_pairs(engine, mixed, mode="reason", chunk=3)
    assert [v.orders for v in verdicts] == [1, 2, 1, 2, 1, 1, 1, 1]
    assert [v.label for v in verdicts] == [p.label for p in mixed]  # order kept
    sent = [r for call in engine.generate_calls for r in call]
    assert len(sent) == 6 + 2 * 2  # given prompts once, regular pairs in both orders
    for pair in given:  # the data's own wording reaches the model unchanged
        assert sum(pair.question in r.prompt for r in sent) == 1
    report = score(verdicts, model="o", mode="reason")
    assert report.accuracy == 1.0 and report.given_prompts == 6
    assert report.accuracy_swapped == 1.0 and report.consistency == 1.0  # the 2 regular
    assert "6 given judge prompts, judged once" in report.summary()


async def test_given_prompts_alone_leave_the_swapped_figures_empty() -> None:
    verdicts = await judge_pairs(ScriptedEngine(always_first),
                                 [_given(i, 1 + i % 2) for i in range(4)], mode="reason")
    report = score(verdicts, model="b", mode="reason")
    assert report.accuracy == 0.5 and report.first_position_rate == 1.0
    assert (report.accuracy_swapped, report.consistency, report.consistent_accuracy) == (
        None, None, None)
    assert "swapped –" in report.summary()


async def test_given_prompts_put_each_image_at_its_placeholder() -> None:
    pair = _given(3, 2, images=("cat.png", "dog.png"))
    engine = ScriptedEngine(given_oracle, supports_images=True)
    (verdict,) = await judge_pairs(engine, [pair], mode="reason")
    assert verdict.as_given == 2
    (request,) = engine.requests
    assert list(request.images) == ["cat.png", "dog.png"]
    assert re.search(r"<image>\s+<image>\s+Question: what is 3 \+ 1\?", request.prompt)
