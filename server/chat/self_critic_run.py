"""Best-of-N with the self-critic knockout, for a prepared chat: the run, its answer
whole, or streamed with keep-alives while the tournament runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from critic_loop.best_of_n import BestOfNResult, best_of_n
from critic_loop.code.grader import CodeGrader
from critic_loop.code.grouping import BehaviourGrouping, function_prompt, last_user_text
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Engine
from critic_loop.selection.registry import groups_answers
from server.chat.gateway_chunks import keepalive_choice, summary_choice
from server.chat.prepared import PreparedChat
from server.chat.response import chat_completion, delta_choice
from server.edge.sse import DONE
from server.load.metrics import Metrics
from server.protocol.usage import Usage
from server.serving.ids import engine_id
from server.serving.prefix_cache import CachedTokenCounter


class SelfCriticRunner:
    def __init__(self, engine: Engine, metrics: Metrics, grader: CodeGrader | None,
                 keepalive_interval_s: float) -> None:
        self.engine = engine
        self.metrics = metrics
        self.grader = grader
        """With `--exec-grouping`: runs code candidates on the question's examples."""
        self.keepalive_interval_s = keepalive_interval_s

    async def run(self, chat: PreparedChat, request_id: str) -> tuple[BestOfNResult, Usage]:
        """The run and its usage: every token spent, candidates and judge, and the prefix
        cache's hits among all their prompts."""
        assert chat.self_critic is not None
        engine = CachedTokenCounter(self.engine)
        grouping = self._behaviour_grouping(chat.messages, chat.self_critic)
        result = await best_of_n(engine, chat.prompt, chat.messages, chat.sampling,
                                 chat.self_critic, engine_id(request_id), chat.prompt_ids,
                                 group_async=grouping)
        if self.grader is not None:  # say how the candidates were grouped
            result = replace(result, report=replace(
                result.report, grouping=grouping.to_dict() if grouping else
                {"grouping": "answer" if groups_answers(chat.self_critic) else "text"}))
        self.metrics.record_self_critic(result.report)
        return result, Usage(result.usage.prompt_tokens, result.usage.completion_tokens,
                             engine.cached_tokens)

    def _behaviour_grouping(self, messages: list[dict[str, Any]], config: SelfCriticConfig
                            ) -> BehaviourGrouping | None:
        """With `--exec-grouping`, for a strategy that groups answers and a question whose
        Python function shows examples: group the candidates by behaviour on them."""
        if self.grader is None or not groups_answers(config):
            return None
        prompt = function_prompt(last_user_text(messages))
        return BehaviourGrouping(self.grader, prompt) if prompt else None

    async def complete(self, chat: PreparedChat, request_id: str,
                       answer_id: str) -> dict[str, Any]:
        result, usage = await self.run(chat, request_id)
        return chat_completion(answer_id, chat.request.model, result.ranked[: chat.request.n],
                               usage, extra={"self_critic": result.report.to_dict()})

    async def stream(self, chat: PreparedChat, request_id: str,
                     line: Callable[..., str]) -> AsyncIterator[str]:
        """Answer at once with the assistant role (gateways wait for a first data chunk),
        keep data flowing while the tournament runs, then stream the ranked choices
        (winner first). The summary rides on a content-free delta of the winner, where
        gateways that rebuild the stream keep it, and on the last chunk as before.
        `line` writes a chunk of this answer."""
        yield line([delta_choice(i, text="", role="assistant") for i in range(chat.request.n)])
        task = asyncio.ensure_future(self.run(chat, request_id))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.keepalive_interval_s)
                if done:
                    break
                yield line([keepalive_choice()])
            result, usage = task.result()
        finally:
            if not task.done():  # the client went away: abort every candidate and judgment
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        report = result.report.to_dict()
        for i, choice in enumerate(result.ranked[: chat.request.n]):
            yield line([delta_choice(i, text=choice.text, logprobs=choice.logprobs)])
            if i == 0:
                yield line([summary_choice(report)])
            yield line([delta_choice(i, finish=choice.finish_reason)])
        yield line([], usage=usage if chat.request.include_usage() else None,
                   extra={"self_critic": report})
        yield DONE
