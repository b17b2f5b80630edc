"""GRPO rewards for a pairwise judge: the paper's 0.9·preference + 0.1·format.

Each reward is a small pure function `(completions, **columns) -> list[float]` as TRL
calls it; completions are strings or conversational `[{"role": "assistant", ...}]` lists.
Verdicts are read strictly, in the judge mode of the prompt (the dataset's `judge_mode`
column; reason when absent): reason mode by the last `\\boxed{}` alone (the paper's
accuracy reward, `critic_loop.verdict.boxed_verdict`), fast mode by the one token, "1" or
"2". The server's lenient `parse_verdict` is not used here: rewarding what it also accepts
(a bare "2", "Response 2 is better") would teach a reason-mode judge to skip the box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from critic_loop.judge_prompt import VERDICT_CHOICES, JudgeMode
from critic_loop.verdict import boxed_verdict, follows_reason_format
from evaluation.pairs import completion_text

RewardFunc = Callable[..., list[float]]

DEFAULT_REWARDS: tuple[str, ...] = ("preference", "format")
DEFAULT_WEIGHTS: tuple[float, ...] = (0.9, 0.1)


def trained_verdict(text: str, mode: JudgeMode | str = JudgeMode.REASON) -> int | None:
    """The verdict a completion earns reward for: reason mode reads the last `\\boxed{}`
    only; fast mode the single token, "1" or "2" (spaces aside). Anything else is None.

    >>> trained_verdict(r"<think>..</think> \\boxed{2}"), trained_verdict("Response 2 is better.")
    (2, None)
    >>> trained_verdict(" 1", "fast"), trained_verdict("1.", "fast"), trained_verdict("one", "fast")
    (1, None, None)
    """
    if JudgeMode(mode) is JudgeMode.FAST:
        token = text.strip()
        return VERDICT_CHOICES.index(token) + 1 if token in VERDICT_CHOICES else None
    return boxed_verdict(text)


def preference_reward(completions: Sequence[Any], label: Sequence[int],
                      judge_mode: Sequence[str] | None = None, **_: Any) -> list[float]:
    """1.0 when the verdict (`trained_verdict`: the last box, or the fast token) matches
    the label, else 0.0 (no verdict too).

    >>> preference_reward([r"<think>2 is off</think>\\boxed{1}", "\\\\boxed{1}",
    ...                    "Response 1 is better."], label=[1, 2, 1])
    [1.0, 0.0, 0.0]
    >>> preference_reward(["2", "2"], label=[2, 1], judge_mode=["fast", "fast"])
    [1.0, 0.0]
    """
    modes = judge_mode or [JudgeMode.REASON] * len(completions)
    return [float(trained_verdict(completion_text(c), m) == int(y))
            for c, y, m in zip(completions, label, modes, strict=True)]


def format_reward(completions: Sequence[Any], **_: Any) -> list[float]:
    """1.0 when the output is `<think>...</think>...\\boxed{...}...`, else 0.0.

    >>> format_reward([r"<think>hm</think> \\boxed{2}", r"\\boxed{2}"])
    [1.0, 0.0]
    """
    return [float(follows_reason_format(completion_text(c))) for c in completions]


def verdict_reward(completions: Sequence[Any], judge_mode: Sequence[str] | None = None,
                   **_: Any) -> list[float]:
    """1.0 for any verdict `preference_reward` could read, right or wrong: a shaping term
    for tiny models, which it teaches to box a verdict rather than to state one.

    >>> verdict_reward([r"\\boxed{2}", r"<think>x</think>\\boxed{1}", "Response 1 is better."])
    [1.0, 1.0, 0.0]
    """
    modes = judge_mode or [JudgeMode.REASON] * len(completions)
    return [float(trained_verdict(completion_text(c), m) is not None)
            for c, m in zip(completions, modes, strict=True)]


REWARDS: dict[str, RewardFunc] = {
    "preference": preference_reward,
    "format": format_reward,
    "verdict": verdict_reward,
}
"""Reward functions by the names recipes use."""


def get_rewards(names: Sequence[str]) -> list[RewardFunc]:
    """The registered functions for `names`; an unknown name lists the allowed ones."""
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward {unknown[0]!r}; allowed: {', '.join(REWARDS)}")
    return [REWARDS[n] for n in names]
