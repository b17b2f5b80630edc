"""GRPO rewards for a pairwise judge: the paper's 0.9·preference + 0.1·format.

Each reward is a small pure function `(completions, **columns) -> list[float]` as TRL
calls it; completions are strings or conversational `[{"role": "assistant", ...}]` lists.
Verdicts are read by `critic_loop.verdict`, the parser the server uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from critic_loop.verdict import follows_reason_format, parse_verdict

RewardFunc = Callable[..., list[float]]

DEFAULT_REWARDS: tuple[str, ...] = ("preference", "format")
DEFAULT_WEIGHTS: tuple[float, ...] = (0.9, 0.1)


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text of one completion, plain or conversational.

    >>> completion_text([{"role": "assistant", "content": "hi"}])
    'hi'
    """
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        parts.append(content)
    return "".join(parts)


def preference_reward(completions: Sequence[Any], label: Sequence[int], **_: Any) -> list[float]:
    """1.0 when the verdict (last boxed 1 or 2) matches the label, else 0.0 (invalid too).

    >>> preference_reward([r"<think>2 is off</think>\\boxed{1}", "\\\\boxed{1}", "no idea"],
    ...                   label=[1, 2, 1])
    [1.0, 0.0, 0.0]
    """
    return [float(parse_verdict(completion_text(c)) == int(y))
            for c, y in zip(completions, label, strict=True)]


def format_reward(completions: Sequence[Any], **_: Any) -> list[float]:
    """1.0 when the output is `<think>...</think>...\\boxed{...}...`, else 0.0.

    >>> format_reward([r"<think>hm</think> \\boxed{2}", r"\\boxed{2}"])
    [1.0, 0.0]
    """
    return [float(follows_reason_format(completion_text(c))) for c in completions]


def verdict_reward(completions: Sequence[Any], **_: Any) -> list[float]:
    """1.0 for any readable verdict, right or wrong: a shaping term for tiny models.

    >>> verdict_reward([r"\\boxed{2}", "Response 1 is better.", "both"])
    [1.0, 1.0, 0.0]
    """
    return [float(parse_verdict(completion_text(c)) is not None) for c in completions]


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
