"""Rewards on hand-made edge cases and on real outputs of the default model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.rewards import (
    DEFAULT_REWARDS,
    DEFAULT_WEIGHTS,
    REWARDS,
    format_reward,
    get_rewards,
    preference_reward,
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
    ("", 1, 0.0, 0.0),
])
def test_rewards_on_edge_cases(text: str, label: int, preference: float, fmt: float) -> None:
    assert preference_reward([text], label=[label]) == [preference]
    assert format_reward([text]) == [fmt]


def test_conversational_completions_as_trl_passes_them() -> None:
    completions = [[{"role": "assistant", "content": "<think>x</think>\\boxed{2}"}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{1}"}]}]]
    assert preference_reward(completions, label=[2, 2], prompts=None) == [1.0, 0.0]
    assert format_reward(completions, label=[2, 2]) == [1.0, 0.0]
    assert verdict_reward(completions) == [1.0, 1.0]


def test_rewards_on_real_model_outputs() -> None:
    """Sampled judge outputs of SmolLM2-135M-Instruct (see data/README.md), each with the
    rewards a person assigned after reading it."""
    rollouts = load_rollouts()
    assert len(rollouts) >= 20
    texts = [r["text"] for r in rollouts]
    labels = [r["label"] for r in rollouts]
    assert preference_reward(texts, label=labels) == [r["expected_preference"] for r in rollouts]
    assert format_reward(texts) == [r["expected_format"] for r in rollouts]
    assert verdict_reward(texts) == [float(r["expected_verdict"] is not None) for r in rollouts]


def test_trl_sees_distinct_reward_names() -> None:
    """TRL logs each reward as rewards/<function name>/mean; names must stay distinct."""
    names = [f.__name__ for f in REWARDS.values()]
    assert len(set(names)) == len(names)
