"""Whether a self-critic run's judgments fit the model's context, checked before sampling.

A judge prompt holds the question, two candidates and the instruction, and needs room for
the judge's own answer. A judgment that cannot fit is never sent and counts as an invalid
vote, which would quietly turn matches into coin flips; so the budget is checked up front:
question + 2 × candidate max_tokens + judge budget must fit the context. A reason judgment
also keeps room to be ended in a forced verdict (`FORCED_VERDICT_TOKENS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from critic_loop.engine import Engine, Message
from critic_loop.judge_prompt import FORCED_VERDICT_TOKENS, JudgeMode, judge_messages
from critic_loop.prompts import render_prompt

JOIN_SLACK = 8
"""Tokens a response can add where it meets the template's text (merges at the seams)."""


@dataclass(frozen=True)
class JudgeBudget:
    """The token arithmetic of one judgment: the fixed part, the judge's answer, the context."""

    overhead: int
    """The rendered judge prompt with both responses empty (question and instruction)."""
    judge_tokens: int
    """What the judge may generate: 1 in fast mode; in reason mode judge_max_tokens and
    the room to continue it to a forced verdict."""
    context: int

    @property
    def per_response(self) -> int:
        """The most tokens each of the two responses can have for a judgment to fit."""
        return (self.context - self.overhead - self.judge_tokens - JOIN_SLACK) // 2

    def fits(self, response_tokens: int) -> bool:
        return response_tokens <= self.per_response


def judge_budget(engine: Engine, question: str | Sequence[Message], mode: JudgeMode | str,
                 judge_max_tokens: int) -> JudgeBudget:
    """Measure the judge prompt's fixed part for `question` with the engine's template
    (blocking: it renders and tokenises, so the server calls it off the event loop)."""
    mode = JudgeMode(mode)
    empty = render_prompt(engine, judge_messages(question, "", "", mode))
    return JudgeBudget(overhead=empty.tokens,
                       judge_tokens=1 if mode is JudgeMode.FAST
                      else judge_max_tokens + FORCED_VERDICT_TOKENS,
                       context=engine.max_model_len)
