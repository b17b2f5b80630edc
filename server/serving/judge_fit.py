"""Whether two responses and the judge's answer fit one judge prompt, checked before any
engine work: a judgment that cannot be sent would count as an invalid vote, quietly
turning matches into coin flips. Chat sizes its candidates' budget by it; critique
checks the responses it was given. Blocking (it renders and tokenises): worker threads."""

from __future__ import annotations

from collections.abc import Sequence

from critic_loop.config import SelfCriticConfig
from critic_loop.context_length import CODE as CONTEXT_LENGTH_CODE
from critic_loop.engine import Engine, Message, PromptTooLongError
from critic_loop.judge_budget import JOIN_SLACK, JudgeBudget, judge_budget
from critic_loop.judge_prompt import JudgeMode
from server.edge.errors import APIError, context_length_error


def measured_budget(engine: Engine, question: str | Sequence[Message],
                    config: SelfCriticConfig, param: str) -> JudgeBudget:
    """The judge prompt's token arithmetic for `question`; a question too long by its size
    alone is a 400 on `param`."""
    try:
        return judge_budget(engine, question, config.mode, config.judge_max_tokens)
    except PromptTooLongError as exc:  # by size alone, before tokenising
        raise too_long(exc, param) from exc


def too_long(exc: PromptTooLongError, param: str) -> APIError:
    return APIError(400, str(exc), param=param, code=CONTEXT_LENGTH_CODE)


def fit_candidates(budget: JudgeBudget, config: SelfCriticConfig, max_tokens: int,
                   asked: int | None, param: str) -> int:
    """The candidates' max_tokens such that any two of them can be judged: the server's
    default is capped to fit; a client's own max_tokens (`asked`) that cannot is a 400."""
    if budget.fits(max_tokens):
        return max_tokens
    if asked is None and budget.per_response >= 1:
        return budget.per_response
    reason = config.mode is JudgeMode.REASON
    judge = (f"self_critic.judge_max_tokens = {config.judge_max_tokens} and "
             f"{budget.judge_tokens - config.judge_max_tokens} to end it in a verdict"
             if reason else "the fast judge's 1 token")
    fixes = [f"lower {param} to at most {budget.per_response}"
             if budget.per_response >= 1 else "shorten the messages"]
    if reason:
        fixes.append("lower self_critic.judge_max_tokens")
    raise context_length_error(
        budget.context, budget.overhead + JOIN_SLACK + 2 * max_tokens, budget.judge_tokens,
        param=param if budget.per_response >= 1 else "messages",
        advice=f"Self-critic judges two candidates in one prompt: the question and "
               f"instruction take {budget.overhead} tokens, 2 × {param} = {2 * max_tokens}, "
               f"plus {judge}. To fit, {' or '.join(fixes)}.")


def check_responses_fit(budget: JudgeBudget, config: SelfCriticConfig,
                        longest: Sequence[int]) -> None:
    """A 400 when the two longest responses (their token counts) cannot share one judge
    prompt."""
    if sum(longest) <= 2 * budget.per_response:
        return
    room = 2 * budget.per_response
    raise context_length_error(
        budget.context, budget.overhead + JOIN_SLACK + sum(longest), budget.judge_tokens,
        param="responses",
        advice=f"The two longest responses take {sum(longest)} tokens; with the question, "
               f"the instruction ({budget.overhead} tokens) and the judge's answer "
               f"({budget.judge_tokens}) only {max(room, 0)} fit. Shorten the responses"
               f"{' or lower max_tokens' if config.mode is JudgeMode.REASON else ''}.")
