"""Rewards on hand-made edge cases and on real outputs of the default model.

Training reads verdicts strictly (the last `\\boxed{}` in reason mode, the one token in
fast mode); serving's lenient parser is checked against the same real outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from critic_loop.verdict import boxed_verdict, parse_verdict
from evaluation.pairs import PreferencePair
from trainer.data import to_grpo_dataset
from trainer.rewards import (
    DEFAULT_REWARDS,
    DEFAULT_WEIGHTS,
    REWARDS,
    format_reward,
    get_rewards,
    preference_reward,
    trained_verdict,
    verdict_reward,
)

ROLLOUTS = Path(__file__).parent / "data" / "rollouts.jsonl"


def load_rollouts() -> list[dict]:
    return [json.loads(line) for line in ROLLOUTS.read_text().splitlines() if line.strip()]


def test_paper_weights_and_registry() -> None:
    assert DEFAULT_REWARDS == ("preference", "format") and DEFAULT_WEIGHTS == (0.9, 0.1)
    assert get_rewards(["preference", "format"]) == [preference_reward, format_reward]
    with pytest.raises(ValueError, match="allowed: preference, format, verdict"):
        get_rewards(["length"])
    assert set(REWARDS) == {"preference", "format", "verdict"}


@pytest.mark.parametrize(("text", "label", "preference", "fmt"), [
    ("<think>2 adds wrong</think> so \\boxed{1}", 1, 1.0, 1.0),
    ("<think>2 adds wrong</think> so \\boxed{1}", 2, 0.0, 1.0),
    ("\\boxed{2}", 2, 1.0, 0.0),  # right but without the think block
    ("<think>hm</think> \\boxed{1 or 2}", 1, 0.0, 1.0),  # formatted yet no verdict
    ("<think>unfinished reasoning", 1, 0.0, 0.0),  # cut off by max_completion_length
    ("\\boxed{2} no wait \\boxed{1}", 1, 1.0, 0.0),  # the last box decides
    ("\\boxed{2} no wait, \\boxed{1 or 2}", 2, 0.0, 0.0),  # ...even when it names none
    ("", 1, 0.0, 0.0),
    # right verdicts without a box: serving would read them, training does not reward them
    ("2", 2, 0.0, 0.0),
    ("Response 2 is better.", 2, 0.0, 0.0),
    ("<think>1 is wrong</think> Response 2 is better.", 2, 0.0, 0.0),
    ("<think>hm</think> The answer is 2.", 2, 0.0, 0.0),
    # the prompt's instruction echoed back is not a verdict
    ("Answer \\boxed{1} if Response 1 is better, or \\boxed{2} if Response 2 is better.", 2,
     0.0, 0.0),
])
def test_rewards_on_edge_cases(text: str, label: int, preference: float, fmt: float) -> None:
    assert preference_reward([text], label=[label]) == [preference]
    assert format_reward([text]) == [fmt]


def test_boxed_and_unboxed_verdicts() -> None:
    """The strict reading (training) and the lenient one (serving) on the same texts."""
    texts = ["<think>x</think> \\boxed{2}", "\\boxed{Response 1}", "2", "Response 2 is better.",
             "\\boxed{2} or rather Response 1 is better", "\\boxed{}"]
    assert [boxed_verdict(t) for t in texts] == [2, 1, None, None, 2, None]
    assert [parse_verdict(t) for t in texts] == [2, 1, 2, 2, 2, None]
    assert preference_reward(texts, label=[2, 1, 2, 2, 2, 2]) == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert verdict_reward(texts) == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]


def test_fast_mode_rewards_the_single_token() -> None:
    """Fast-mode completions are one token ("1"/"2", as `max_completion_length: 1` samples
    it); a box is not what that prompt asks for."""
    texts = ["1", " 2", "2", "\\boxed{2}", "", "1."]
    fast = ["fast"] * len(texts)
    assert [trained_verdict(t, "fast") for t in texts] == [1, 2, 2, None, None, None]
    assert preference_reward(texts, label=[1, 2, 1, 2, 2, 1], judge_mode=fast) == [
        1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert verdict_reward(texts, judge_mode=fast) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="fastest"):
        preference_reward(["1"], label=[1], judge_mode=["fastest"])


def test_rewards_read_the_judge_mode_the_dataset_carries() -> None:
    """The rewards are called as TRL calls them: every dataset column is a keyword, so the
    `judge_mode` column `to_grpo_dataset` writes picks the reading, row by row."""
    pair = PreferencePair("What is 2 + 2?", "4.", "5.", 1)
    for mode, right in (("fast", "1"), ("reason", "<think>4 is right</think> \\boxed{1}")):
        rows = to_grpo_dataset([pair], mode).to_list()
        columns = {key: [row[key] for row in rows] for key in rows[0] if key != "prompt"}
        assert columns["judge_mode"] == [mode, mode]
        assert preference_reward([right, right], **columns) == [1.0, 0.0]  # as given, swapped


def test_conversational_completions_as_trl_passes_them() -> None:
    completions = [[{"role": "assistant", "content": "<think>x</think>\\boxed{2}"}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{1}"}]}]]
    assert preference_reward(completions, label=[2, 2], prompts=None) == [1.0, 0.0]
    assert format_reward(completions, label=[2, 2]) == [1.0, 0.0]
    assert verdict_reward(completions) == [1.0, 1.0]


def test_rewards_on_real_model_outputs() -> None:
    """Sampled judge outputs of SmolLM2-135M-Instruct (see data/README.md), each with the
    verdicts and rewards a person assigned after reading it."""
    rollouts = load_rollouts()
    assert len(rollouts) >= 20
    texts = [r["text"] for r in rollouts]
    labels = [r["label"] for r in rollouts]
    assert [parse_verdict(t) for t in texts] == [r["expected_verdict"] for r in rollouts]
    assert [boxed_verdict(t) for t in texts] == [r["expected_boxed_verdict"] for r in rollouts]
    assert preference_reward(texts, label=labels) == [r["expected_preference"] for r in rollouts]
    assert format_reward(texts) == [r["expected_format"] for r in rollouts]
    assert verdict_reward(texts) == [float(r["expected_boxed_verdict"] is not None)
                                     for r in rollouts]
    # the stated-but-unboxed verdicts the lenient reading would have rewarded
    assert sum(r["expected_verdict"] == r["label"] for r in rollouts) >= 5


def test_trl_sees_distinct_reward_names() -> None:
    """TRL logs each reward as rewards/<function name>/mean; names must stay distinct."""
    names = [f.__name__ for f in REWARDS.values()]
    assert len(set(names)) == len(names)
