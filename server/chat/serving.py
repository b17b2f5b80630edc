"""Chat completions: plain sampling, or best-of-N with the self-critic knockout, answered
whole or streamed. Requests arrive validated (`server/chat/prepare.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import partial
from typing import Any

from critic_loop.best_of_n import BestOfNResult, best_of_n
from critic_loop.code.grader import CodeGrader
from critic_loop.code.grouping import BehaviourGrouping, function_prompt, last_user_text
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Engine, GenerationRequest
from critic_loop.generation_defaults import NO_DEFAULTS, GenerationDefaults
from critic_loop.selection.registry import groups_answers
from server.chat.gateway_chunks import keepalive_choice, summary_choice
from server.chat.prepare import ChatPreparer, PreparedChat
from server.chat.protocol import ChatCompletionRequest
from server.chat.response import DONE, Usage, chat_completion, chunk, delta_choice
from server.chat.tools import ToolParser, as_chunks, forced_calls, with_tool_calls
from server.load.capacity import WorkCost
from server.load.metrics import Metrics
from server.serving.ids import created_now, engine_id
from server.serving.prefix_cache import CachedTokenCounter
from server.serving.stream_usage import StreamUsage
from server.settings import ServerSettings


class ChatService:
    """Turns `ChatCompletionRequest`s into engine work and OpenAI-shaped answers."""

    def __init__(self, engine: Engine, settings: ServerSettings, metrics: Metrics,
                 defaults: GenerationDefaults = NO_DEFAULTS,
                 grader: CodeGrader | None = None) -> None:
        self.engine = engine
        self.grader = grader
        """With `--exec-grouping`: runs code candidates on the question's examples."""
        self.settings = settings
        self.metrics = metrics
        self.tool_parser = (ToolParser(settings.tool_call_parser, getattr(engine, "tokenizer", None))
                            if settings.tool_call_parser else None)
        self.preparer = ChatPreparer(engine, settings, self.tool_parser, defaults)

    # -- validation: see ChatPreparer ------------------------------------------------------
    def estimated_cost(self, request: ChatCompletionRequest) -> WorkCost:
        return self.preparer.estimated_cost(request)

    def prepare(self, request: ChatCompletionRequest) -> PreparedChat:
        return self.preparer.prepare(request)

    async def load_images(self, chat: PreparedChat) -> PreparedChat:
        return await self.preparer.load_images(chat)

    # -- non-streaming ---------------------------------------------------------------------
    async def complete(self, chat: PreparedChat, request_id: str) -> dict[str, Any]:
        if chat.self_critic:
            result, usage = await self._run_self_critic(chat, request_id)
            return self._with_tool_calls(chat, self._self_critic_body(chat, request_id,
                                                                      result, usage))
        (result,) = await self.engine.generate([_generation(chat, request_id)])
        usage = Usage(result.prompt_tokens, result.completion_tokens, result.cached_tokens)
        self.metrics.record_generation(usage.prompt_tokens, usage.completion_tokens)
        return self._with_tool_calls(chat, chat_completion(
            _completion_id(request_id), chat.request.model, result.completions, usage))

    def _with_tool_calls(self, chat: PreparedChat, body: dict[str, Any]) -> dict[str, Any]:
        request = chat.request
        choice = request.effective_tool_choice
        if choice == "none":
            return body
        if choice == "auto":
            assert self.tool_parser is not None  # prepare() refuses "auto" without one
            parser = self.tool_parser
            return with_tool_calls(body, lambda text: parser.read(text, request))
        # OpenAI ends a call to a named function with "stop", a "required" one with "tool_calls"
        return with_tool_calls(body, lambda text: forced_calls(text, request),
                               "tool_calls" if choice == "required" else "stop")

    async def _run_self_critic(self, chat: PreparedChat,
                               request_id: str) -> tuple[BestOfNResult, Usage]:
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

    def _self_critic_body(self, chat: PreparedChat, request_id: str,
                          result: BestOfNResult, usage: Usage) -> dict[str, Any]:
        choices = result.ranked[: chat.request.n]
        return chat_completion(_completion_id(request_id), chat.request.model, choices, usage,
                               extra={"self_critic": result.report.to_dict()})

    # -- streaming -------------------------------------------------------------------------
    async def stream(self, chat: PreparedChat, request_id: str) -> AsyncIterator[str]:
        if chat.request.effective_tool_choice != "none":
            # Tool calls are known once the answer is: answer whole, then send it as chunks
            body = await self.complete(chat, request_id)
            for line in as_chunks(body, chat.request.include_usage()):
                yield line
            return
        if chat.self_critic:
            async for line in self._stream_self_critic(chat, request_id):
                yield line
            return
        line = _chunk_writer(chat, request_id)
        yield line(_role_choices(chat.request.n))
        counted = StreamUsage()
        async for delta in self.engine.stream(_generation(chat, request_id)):
            counted.add(delta)
            if delta.text or delta.finish_reason or delta.logprobs:
                yield line([delta_choice(delta.index, text=delta.text, finish=delta.finish_reason,
                                         logprobs=delta.logprobs)])
        usage = counted.usage()
        self.metrics.record_generation(usage.prompt_tokens, usage.completion_tokens)
        if chat.request.include_usage():
            yield line([], usage=usage)
        yield DONE

    async def _stream_self_critic(self, chat: PreparedChat, request_id: str) -> AsyncIterator[str]:
        """Answer at once with the assistant role (gateways wait for a first data chunk),
        keep data flowing while the tournament runs, then stream the ranked choices
        (winner first). The summary rides on a content-free delta of the winner, where
        gateways that rebuild the stream keep it, and on the last chunk as before."""
        line = _chunk_writer(chat, request_id)
        yield line(_role_choices(chat.request.n))
        task = asyncio.ensure_future(self._run_self_critic(chat, request_id))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.settings.keepalive_interval_s)
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


def _generation(chat: PreparedChat, request_id: str) -> GenerationRequest:
    """The plain (not self-critic) engine request: `n` samples of the prompt."""
    return GenerationRequest(engine_id(request_id), chat.prompt, chat.sampling, chat.request.n,
                             images=chat.images, prompt_ids=chat.prompt_ids)


def _chunk_writer(chat: PreparedChat, request_id: str) -> Callable[..., str]:
    """`chunk` with this answer's id, model and creation time filled in."""
    return partial(chunk, _completion_id(request_id), chat.request.model, created_now())


def _role_choices(n: int) -> list[dict[str, Any]]:
    """The first chunk's choices: each of the `n` opens with the assistant role."""
    return [delta_choice(i, text="", role="assistant") for i in range(n)]


def _completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"
