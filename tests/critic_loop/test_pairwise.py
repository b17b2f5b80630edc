"""Pairwise matches: alternating orders, majority, splits in both modes, invalid votes, and
reason judgments ended in a forced verdict."""

from __future__ import annotations

import math

import pytest

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Completion, GenerationRequest
from critic_loop.judge_prompt import judge_messages
from critic_loop.match import MatchResult, reasoning_of
from critic_loop.pairwise import Pairing, PairJudge, judge_given_prompts
from critic_loop.runtime.engines.scripted import ScriptedEngine, echo_responder
from tests.support.simulated_judges import responses_in


def prefers(text: str):
    """A responder whose judge prefers the response `text`, in whichever position."""
    def respond(request: GenerationRequest, index: int) -> str:
        first, _ = responses_in(request.prompt)
        digit = "1" if first == text else "2"
        if request.sampling.choices:
            return digit
        return f"<think>{text} is right</think> \\boxed{{{digit}}}"
    return respond


def always(text: str):
    return lambda request, index: text


async def play(engine: ScriptedEngine, config: SelfCriticConfig, *, seed: int = 0,
               key: str = "r1-m0") -> MatchResult:
    judge = PairJudge(engine, "Which is right?", config, request_id="req", seed=seed)
    [match] = await judge.play([Pairing(0, 1, "alpha", "beta", key)])
    return match


async def test_judgments_alternate_order_and_go_out_in_one_call() -> None:
    engine = ScriptedEngine(prefers("beta"))
    match = await play(engine, SelfCriticConfig(comparisons=4, judge_temperature=0.5))
    assert [j.order for j in match.judgments] == [(0, 1), (1, 0), (0, 1), (1, 0)]
    [call] = engine.generate_calls
    assert [r.request_id for r in call] == [f"req-r1-m0-j{k}" for k in range(4)]
    assert [responses_in(r.prompt) for r in call] == [("alpha", "beta"), ("beta", "alpha")] * 2
    assert all(r.sampling.max_tokens == 512 and r.sampling.temperature == 0.5 for r in call)
    assert match.winner == 1 and match.loser == 0
    assert (match.outcome, match.decided_by) == ("consistent", "majority")
    assert match.votes == (0, 4) and match.invalid_votes == 0


@pytest.mark.parametrize("config", [SelfCriticConfig(comparisons=5),
                                    SelfCriticConfig(judge="fast", comparisons=4)])
async def test_a_greedy_judge_generates_each_order_once_and_repeats_it(
        config: SelfCriticConfig) -> None:
    engine = ScriptedEngine(prefers("beta"))
    match = await play(engine, config)
    [call] = engine.generate_calls
    assert [r.request_id for r in call] == ["req-r1-m0-j0", "req-r1-m0-j1"]
    k = config.comparisons
    assert [j.request_id for j in match.judgments] == [f"req-r1-m0-j{i}" for i in range(k)]
    assert [j.repeated for j in match.judgments] == [False, False] + [True] * (k - 2)
    for i, judgment in enumerate(match.judgments[2:], start=2):  # the same vote, no tokens
        source = match.judgments[i % 2]
        assert (judgment.order, judgment.verdict, judgment.probabilities) == (
            source.order, source.verdict, source.probabilities)
        assert judgment.completion_tokens == judgment.prompt_tokens == 0
    assert match.votes == (0, k) and match.winner == 1


async def test_judgment_records_verdict_reasoning_text_and_tokens() -> None:
    engine = ScriptedEngine(prefers("alpha"))
    match = await play(engine, SelfCriticConfig())
    first, second = match.judgments
    assert first.verdict == second.verdict == 0
    assert first.text == "<think>alpha is right</think> \\boxed{1}"
    assert second.text.endswith("\\boxed{2}")
    assert first.reasoning == "alpha is right" and first.probabilities is None
    assert first.completion_tokens == 4
    assert first.prompt_tokens == engine.count_tokens(engine.generate_calls[0][0].prompt)
    assert first.to_dict()["order"] == [0, 1]


async def test_reason_split_at_temperature_zero_goes_to_the_coin() -> None:
    engine = ScriptedEngine(always("\\boxed{1}"))  # always the first-shown response
    match = await play(engine, SelfCriticConfig(judge_temperature=0.0))
    assert (match.outcome, match.decided_by) == ("split", "coin")
    assert len(engine.generate_calls) == 1 and len(match.judgments) == 2
    assert match.winner in (0, 1)


async def test_reason_split_takes_one_extra_judgment_when_sampling() -> None:
    engine = ScriptedEngine(always("\\boxed{1}"))
    match = await play(engine, SelfCriticConfig(judge_temperature=0.8))
    assert (match.outcome, match.decided_by) == ("split", "extra_judgment")
    assert [len(c) for c in engine.generate_calls] == [2, 1]
    extra = match.judgments[-1]
    assert extra.request_id == "req-r1-m0-x"
    assert match.winner == extra.verdict == extra.order[0]
    assert match.votes == (2, 1) or match.votes == (1, 2)


async def test_invalid_extra_judgment_falls_to_the_coin() -> None:
    def respond(request: GenerationRequest, index: int) -> str | Completion:
        if request.request_id.endswith("-x"):  # aborted: no reasoning to end in a verdict
            return Completion(0, "", 0, "abort")
        return "\\boxed{1}"
    match = await play(ScriptedEngine(respond), SelfCriticConfig(judge_temperature=0.8))
    assert (match.outcome, match.decided_by) == ("split", "coin")
    assert match.invalid_votes == 1 and len(match.judgments) == 3


async def test_single_comparison_extra_judgment_asks_the_other_order() -> None:
    def respond(request: GenerationRequest, index: int) -> str | Completion:
        if request.request_id.endswith("-j0"):
            return Completion(0, "", 0, "abort")
        return "\\boxed{1}"
    match = await play(ScriptedEngine(respond), SelfCriticConfig(comparisons=1))
    assert [j.order for j in match.judgments] == [(0, 1), (1, 0)]
    assert (match.outcome, match.decided_by, match.winner) == ("invalid", "extra_judgment", 1)


@pytest.mark.parametrize("calibrate", [False, True])
async def test_fast_split_is_broken_by_summed_probabilities(calibrate: bool) -> None:
    def respond(request: GenerationRequest, index: int) -> Completion:
        first, _ = responses_in(request.prompt)
        p_first = 0.6 if first == "alpha" else 0.9  # each order prefers the first, unequally
        return Completion(0, "1", 1, "length",
                          choice_logprobs={"1": math.log(p_first), "2": math.log(1 - p_first)})
    engine = ScriptedEngine(respond)
    match = await play(engine, SelfCriticConfig(judge="fast", calibrate_position=calibrate))
    [call] = engine.generate_calls
    assert all(r.sampling.choices == ("1", "2") and r.sampling.max_tokens == 1 for r in call)
    assert [j.verdict for j in match.judgments] == [0, 1]
    assert [j.probabilities for j in match.judgments] == [
        pytest.approx((0.6, 0.4)), pytest.approx((0.9, 0.1))]
    assert (match.outcome, match.decided_by, match.winner) == ("split", "probability", 1)
    if not calibrate:
        assert match.score == pytest.approx((0.6 + 0.1, 0.4 + 0.9))
    else:  # content preference: half the log-odds difference of the orders, per judgment
        delta = (math.log(0.6 / 0.4) - math.log(0.9 / 0.1)) / 2
        assert match.score == pytest.approx((2 / (1 + math.exp(-delta)),
                                             2 / (1 + math.exp(delta))))


async def test_fast_exact_tie_goes_to_the_coin() -> None:
    match = await play(ScriptedEngine(echo_responder), SelfCriticConfig(judge="fast"))
    assert (match.outcome, match.decided_by) == ("split", "coin")
    assert match.score == (1.0, 1.0)


async def test_fast_mode_reads_the_text_without_choice_logprobs() -> None:
    def respond(request: GenerationRequest, index: int) -> Completion:
        return Completion(0, "2", 1, "stop")
    match = await play(ScriptedEngine(respond), SelfCriticConfig(judge="fast"))
    assert [j.verdict for j in match.judgments] == [1, 0]
    assert all(j.probabilities is None for j in match.judgments)


async def test_invalid_votes_are_counted_not_raised() -> None:
    match = await play(ScriptedEngine(always("garbage ???")), SelfCriticConfig())
    assert (match.outcome, match.decided_by) == ("invalid", "coin")
    assert match.invalid_votes == 2 and match.votes == (0, 0)
    assert all(j.verdict is None for j in match.judgments)

    def one_invalid(request: GenerationRequest, index: int) -> str:
        return "\\boxed{2}" if request.request_id.endswith("-j0") else "\\boxed{3}"
    match = await play(ScriptedEngine(one_invalid), SelfCriticConfig())
    assert (match.outcome, match.decided_by, match.winner) == ("invalid", "majority", 1)


async def test_majority_outcome_needs_dissent_among_valid_votes() -> None:
    def respond(request: GenerationRequest, index: int) -> str:
        return "\\boxed{1}" if request.request_id.endswith("-j1") else prefers("alpha")(
            request, index)
    match = await play(ScriptedEngine(respond), SelfCriticConfig(comparisons=3))
    assert (match.outcome, match.decided_by, match.winner) == ("majority", "majority", 0)
    assert match.votes == (2, 1)


async def test_coin_is_seeded_by_the_match() -> None:
    config = SelfCriticConfig()
    first = [(await play(ScriptedEngine(always("\\boxed{1}")), config, key=f"k{i}")).winner
             for i in range(30)]
    again = [(await play(ScriptedEngine(always("\\boxed{1}")), config, key=f"k{i}")).winner
             for i in range(30)]
    other = [(await play(ScriptedEngine(always("\\boxed{1}")), config, seed=1,
                         key=f"k{i}")).winner for i in range(30)]
    assert first == again and first != other
    assert set(first) == {0, 1}


async def test_prompt_that_does_not_fit_is_an_invalid_vote_not_a_call() -> None:
    engine = ScriptedEngine(prefers("alpha"), max_model_len=40)
    match = await play(engine, SelfCriticConfig(judge_max_tokens=16))
    assert engine.generate_calls == []
    assert all(not j.sent and j.verdict is None for j in match.judgments)
    assert (match.outcome, match.decided_by) == ("invalid", "coin")


def test_reasoning_is_the_think_block() -> None:
    assert reasoning_of("<think>\n a \n</think> \\boxed{1}") == "a"
    assert reasoning_of("<think> cut off by max_tokens") == "cut off by max_tokens"
    assert reasoning_of("\\boxed{2}") is None


async def test_each_judge_prompt_is_rendered_once_and_off_the_event_loop() -> None:
    import threading

    class Recording(ScriptedEngine):
        def render_prompt(self, messages, tools=None):
            threads.append(threading.get_ident())
            return super().render_prompt(messages, tools)

    threads: list[int] = []
    engine = Recording(always("<think>a split</think> \\boxed{1}"))
    judge = PairJudge(engine, "Which is right?", SelfCriticConfig(comparisons=4,
                      judge_temperature=1.0), request_id="req", seed=0)
    [match] = await judge.play([Pairing(0, 1, "alpha", "beta", "r1-m0")])
    assert match.decided_by == "extra_judgment"  # 4 + 1 sampled judgments of one pair...
    assert sum(len(call) for call in engine.generate_calls) == 5
    assert [responses_in(p) for p in engine.rendered] == [("alpha", "beta"), ("beta", "alpha")]
    assert threading.get_ident() not in threads  # ...from two prompts, each rendered once


GARBAGE = ["<think>17 * 3 = 51</think>", "", "no box at all", "<think>cut off by the budg",
           "<think>hm</think> \\boxed{3}", "\\boxed{1 or 2}", "<think>a</think>\n\\boxed{"]


def thinks(text: str, digit_for_first: dict[str, str]):
    """A reason judge that writes `text` (no readable verdict); asked for the one forced
    digit, it names the response `digit_for_first` gives for the first-shown text."""
    def respond(request: GenerationRequest, index: int) -> str:
        if request.sampling.choices:
            first, _ = responses_in(request.prompt)
            return digit_for_first[first]
        return text
    return respond


@pytest.mark.parametrize("text", GARBAGE)
async def test_a_reason_judgment_without_a_verdict_is_ended_in_one(text: str) -> None:
    engine = ScriptedEngine(thinks(text, {"alpha": "2", "beta": "1"}))  # prefers beta
    match = await play(engine, SelfCriticConfig(comparisons=2, judge_max_tokens=64))
    assert match.invalid_votes == 0 and match.winner == 1
    assert (match.outcome, match.decided_by) == ("consistent", "majority")
    assert all(j.forced and j.verdict == 1 for j in match.judgments)
    first, forced = engine.generate_calls
    assert [r.request_id for r in forced] == ["req-r1-m0-j0-v", "req-r1-m0-j1-v"]
    for judged, request in zip(first, forced, strict=True):  # the judgment, continued
        assert request.prompt.startswith(judged.prompt)
        assert request.prompt.endswith("\n</think>\n\\boxed{")
        assert request.sampling.choices == ("1", "2") and request.sampling.max_tokens == 1
    judgment = match.judgments[0]
    assert judgment.text == text and judgment.probabilities == (0.0, 1.0)
    assert judgment.completion_tokens == len([w for w in text.split(" ") if w]) + 1
    assert judgment.prompt_tokens == (engine.count_tokens(first[0].prompt)
                                      + engine.count_tokens(forced[0].prompt))
    assert judgment.to_dict()["forced"] is True


async def test_the_forced_continuation_keeps_the_judges_own_reasoning() -> None:
    engine = ScriptedEngine(thinks("<think>17 * 3 = 51</think> so Response", {"alpha": "1",
                                                                           "beta": "2"}))
    await play(engine, SelfCriticConfig())
    [_, forced] = engine.generate_calls
    assert forced[0].prompt.endswith("<|assistant|><think>17 * 3 = 51\n</think>\n\\boxed{")


async def test_a_judgment_with_a_verdict_is_not_forced() -> None:
    engine = ScriptedEngine(prefers("beta"))
    match = await play(engine, SelfCriticConfig())
    assert len(engine.generate_calls) == 1
    assert not any(j.forced for j in match.judgments)
    assert "forced" not in match.judgments[0].to_dict()


async def test_only_the_judgments_without_a_verdict_are_forced_in_one_call() -> None:
    def respond(request: GenerationRequest, index: int) -> str:
        if request.sampling.choices:
            return "1"
        return "I wonder" if request.request_id.endswith("-j1") else "\\boxed{2}"
    engine = ScriptedEngine(respond)
    judge = PairJudge(engine, "Which is right?", SelfCriticConfig(), request_id="req", seed=0)
    matches = await judge.play([Pairing(0, 1, "alpha", "beta", "r1-m0"),
                                Pairing(2, 3, "gamma", "delta", "r1-m1")])
    assert [len(call) for call in engine.generate_calls] == [4, 2]
    assert [r.request_id for r in engine.generate_calls[1]] == ["req-r1-m0-j1-v",
                                                               "req-r1-m1-j1-v"]
    assert all(m.invalid_votes == 0 for m in matches)
    assert [[j.forced for j in m.judgments] for m in matches] == [[False, True]] * 2


async def test_a_forced_continuation_that_cannot_fit_stays_an_invalid_vote() -> None:
    long_thinking = "<think>" + " word" * 40  # the judgment fits, its continuation does not
    engine = ScriptedEngine(thinks(long_thinking, {"alpha": "1", "beta": "1"}))
    prompt_tokens = engine.count_tokens(engine.render_chat(
        judge_messages("Which is right?", "alpha", "beta")))
    engine.max_model_len = prompt_tokens + 41
    match = await play(engine, SelfCriticConfig(judge_max_tokens=41))
    assert match.invalid_votes == 2 and not any(j.forced for j in match.judgments)
    assert len(engine.generate_calls) == 1  # nothing that cannot fit is sent


async def test_given_judge_prompts_are_forced_to_a_verdict_too() -> None:
    engine = ScriptedEngine(lambda request, index: "2" if request.sampling.choices
                            else "<think>both fine</think>")
    [judgment] = await judge_given_prompts(
        engine, [judge_messages("Q?", "a", "b")], SelfCriticConfig(), ["given-0"])
    assert judgment.verdict == 2 and judgment.forced
    assert engine.generate_calls[1][0].request_id == "given-0-v"


async def test_fast_judgments_are_never_forced() -> None:
    engine = ScriptedEngine(lambda request, index: Completion(0, "?", 1, "length"))
    match = await play(engine, SelfCriticConfig(judge="fast"))
    assert match.invalid_votes == 2 and len(engine.generate_calls) == 1
