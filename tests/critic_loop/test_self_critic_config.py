"""`SelfCriticConfig` validation: bad values are ValueErrors that list what is allowed."""

from __future__ import annotations

import dataclasses

import pytest

from critic_loop.config import SelfCriticConfig
from critic_loop.judge_prompt import JudgeMode


def test_defaults() -> None:
    config = SelfCriticConfig()
    assert (config.candidates, config.judge, config.comparisons) == (4, JudgeMode.REASON, 2)
    assert (config.return_trace, config.seed, config.schedule) == (False, None, "rounds")
    assert not config.extra_judgment and config.max_judge_calls == 3 * 2


def test_judge_is_normalised() -> None:
    assert SelfCriticConfig(judge="fast").judge is JudgeMode.FAST
    assert SelfCriticConfig(judge="fast").to_dict()["judge"] == "fast"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("judge", "slow", "judge must be one of 'reason', 'fast', got 'slow'"),
    ("candidates", 0, "candidates must be an integer from 1 to 128, got 0"),
    ("candidates", 129, "from 1 to 128"),
    ("candidates", True, "candidates must be an integer"),
    ("candidates", 2.0, "candidates must be an integer"),
    ("comparisons", 0, "comparisons must be an integer from 1 to 64"),
    ("judge_max_tokens", 0, "judge_max_tokens must be an integer >= 1"),
    ("judge_temperature", -0.1, r"judge_temperature must be a number in \[0, 2\]"),
    ("judge_temperature", float("nan"), "judge_temperature"),
    ("judge_temperature", "0.5", "judge_temperature"),
    ("return_trace", "yes", "return_trace must be true or false"),
    ("seed", "7", "seed must be an integer"),
    ("schedule", "eager", "schedule must be one of 'rounds', 'pipelined'"),
])
def test_bad_values_are_rejected(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SelfCriticConfig(**{field: value})


def test_extra_judgment_bound() -> None:
    sampled = SelfCriticConfig(candidates=8, judge_temperature=0.7)
    assert sampled.extra_judgment and sampled.max_judge_calls == 7 * 3
    assert SelfCriticConfig(comparisons=1).extra_judgment
    assert not SelfCriticConfig(judge="fast", judge_temperature=1.0).extra_judgment


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SelfCriticConfig().candidates = 3  # type: ignore[misc]
