"""Chat completions: plain sampling, or best-of-N with the self-critic knockout.

Validation that needs the engine (model name, images, context length) happens here,
before any engine work, so bad input is a 400 and never reaches vLLM.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from critic_loop.best_of_n import BestOfNResult, best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Engine, GenerationRequest, SamplingOptions
from critic_loop.judge_budget import judge_budget
from critic_loop.judge_prompt import JudgeMode
from server.errors import APIError, bad_request
from server.metrics import Metrics
from server.protocol.chat import ChatCompletionRequest, SelfCriticOptions
from server.protocol.chat_response import (
    DONE,
    Usage,
    chat_completion,
    chunk,
    delta_choice,
)
from server.settings import ServerSettings

SELF_CRITIC_SUFFIX = ":self-critic"


@dataclass(frozen=True)
class PreparedChat:
    """A validated chat request, ready for the engine."""

    request: ChatCompletionRequest
    prompt: str
    messages: list[dict[str, Any]]
    sampling: SamplingOptions
    self_critic: SelfCriticConfig | None

    @property
    def sequences(self) -> int:
        """Admission cost: sequences this request keeps in flight. A self-critic request
        holds its candidates and, pipelined, its first round of judgments beside them."""
        if self.self_critic is None:
            return self.request.n
        return self.self_critic.candidates + self.self_critic.peak_judge_sequences


class ChatService:
    """Turns `ChatCompletionRequest`s into engine work and OpenAI-shaped answers."""

    def __init__(self, engine: Engine, settings: ServerSettings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics

    # -- validation ----------------------------------------------------------------------
    def prepare(self, request: ChatCompletionRequest) -> PreparedChat:
        alias = self._check_model(request.model)
        if any(m.has_images() for m in request.messages) and not self.engine.supports_images:
            raise bad_request(f"The model {self.engine.model_name!r} reads text only; remove "
                              "the image_url content parts.", param="messages",
                              code="images_not_supported")
        if request.n > self.settings.max_n:
            raise bad_request(f"n must be between 1 and {self.settings.max_n}, got {request.n}.",
                              param="n")
        messages = [m.as_text_dict() for m in request.messages]
        try:
            prompt = self.engine.render_chat(messages)
        except Exception as exc:  # a chat template rejecting the conversation is bad input
            raise bad_request(f"The model's chat template rejected these messages: {exc}",
                              param="messages") from exc
        max_tokens = self._max_tokens(request, prompt)
        critic = self._self_critic_config(request, alias)
        if critic is not None:
            max_tokens = self._fit_judge(request, messages, critic, max_tokens)
        sampling = request.sampling(max_tokens)
        return PreparedChat(request, prompt, messages, sampling, critic)

    def _fit_judge(self, request: ChatCompletionRequest, messages: list[dict[str, Any]],
                   critic: SelfCriticConfig, max_tokens: int) -> int:
        """The candidates' max_tokens such that any two of them can be judged: the server's
        default is capped to fit; a client's own max_tokens that cannot fit is a 400."""
        budget = judge_budget(self.engine, messages, critic.mode, critic.judge_max_tokens)
        if budget.fits(max_tokens):
            return max_tokens
        asked = request.requested_max_tokens()
        if asked is None and budget.per_response >= 1:
            return budget.per_response
        param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        reason = critic.mode is JudgeMode.REASON
        judge = (f"self_critic.judge_max_tokens = {budget.judge_tokens}" if reason
                 else "the fast judge's 1 token")
        fixes = [f"lower {param} to at most {budget.per_response}"
                 if budget.per_response >= 1 else "shorten the messages"]
        if reason:
            fixes.append("lower self_critic.judge_max_tokens")
        raise APIError(400, f"Self-critic judges two candidates in one prompt, which does not "
                       f"fit: the question and instruction take {budget.overhead} tokens, "
                       f"2 × {param} = {2 * max_tokens}, plus {judge}, exceed the model's "
                       f"context of {budget.context} tokens. To fit, {' or '.join(fixes)}.",
                       param=param if budget.per_response >= 1 else "messages",
                       code="context_length_exceeded")

    def _check_model(self, name: str) -> bool:
        base = self.engine.model_name
        if name == base:
            return False
        if name == base + SELF_CRITIC_SUFFIX:
            return True
        raise APIError(404, f"The model {name!r} does not exist. This server serves {base!r} "
                       f"and {base + SELF_CRITIC_SUFFIX!r}.", param="model",
                       code="model_not_found")

    def _max_tokens(self, request: ChatCompletionRequest, prompt: str) -> int:
        prompt_tokens = self.engine.count_tokens(prompt)
        room = self.engine.max_model_len - prompt_tokens
        if room < 1:
            raise APIError(400, f"The messages take {prompt_tokens} tokens, which fills the "
                           f"model's context of {self.engine.max_model_len}; shorten them.",
                           param="messages", code="context_length_exceeded")
        asked = request.requested_max_tokens()
        if asked is None:
            return min(self.settings.default_max_tokens, room)
        if asked > room:
            param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
            raise APIError(400, f"{param}={asked} does not fit: the messages take "
                           f"{prompt_tokens} of the model's {self.engine.max_model_len} tokens,"
                           f" leaving {room}. Lower {param}.", param=param,
                           code="context_length_exceeded")
        return asked

    def _self_critic_config(self, request: ChatCompletionRequest,
                            alias: bool) -> SelfCriticConfig | None:
        options = request.self_critic
        if options is False or (options is None and not alias):
            return None
        if options is True or options is None:
            options = SelfCriticOptions()
        s = self.settings
        candidates = options.candidates or max(s.candidates, request.n)
        if not 1 <= candidates <= s.max_candidates:
            raise bad_request(f"self_critic.candidates must be between 1 and "
                              f"{s.max_candidates}, got {candidates}.",
                              param="self_critic.candidates")
        if request.n > candidates:
            raise bad_request(f"n ({request.n}) cannot exceed self_critic.candidates "
                              f"({candidates}): choices are the ranked candidates.", param="n")
        try:
            return SelfCriticConfig(
                candidates=candidates,
                judge=options.judge or s.judge,
                comparisons=options.comparisons or s.comparisons,
                judge_max_tokens=options.judge_max_tokens or s.judge_max_tokens,
                judge_temperature=(s.judge_temperature if options.judge_temperature is None
                                   else options.judge_temperature),
                return_trace=options.return_trace,
                seed=request.seed,
                schedule=options.schedule or s.schedule,
                merge=options.merge or s.merge,
                answer_format=options.answer_format,
                answer_pattern=options.answer_pattern,
            )
        except ValueError as exc:
            raise bad_request(str(exc), param="self_critic") from exc

    # -- non-streaming ---------------------------------------------------------------------
    async def complete(self, chat: PreparedChat, request_id: str) -> dict[str, Any]:
        if chat.self_critic:
            result = await self._run_self_critic(chat, request_id)
            return self._self_critic_body(chat, request_id, result)
        generation = GenerationRequest(_engine_id(request_id), chat.prompt, chat.sampling,
                                       chat.request.n)
        (result,) = await self.engine.generate([generation])
        usage = Usage(result.prompt_tokens, result.completion_tokens)
        self.metrics.record_generation(usage.prompt_tokens, usage.completion_tokens)
        return chat_completion(_completion_id(request_id), chat.request.model,
                               result.completions, usage)

    async def _run_self_critic(self, chat: PreparedChat, request_id: str) -> BestOfNResult:
        assert chat.self_critic is not None
        result = await best_of_n(self.engine, chat.prompt, chat.messages, chat.sampling,
                                 chat.self_critic, _engine_id(request_id))
        self.metrics.record_self_critic(result.report)
        return result

    def _self_critic_body(self, chat: PreparedChat, request_id: str,
                          result: BestOfNResult) -> dict[str, Any]:
        usage = Usage(result.usage.prompt_tokens, result.usage.completion_tokens)
        choices = result.ranked[: chat.request.n]
        return chat_completion(_completion_id(request_id), chat.request.model, choices, usage,
                               extra={"self_critic": result.report.to_dict()})

    # -- streaming -------------------------------------------------------------------------
    async def stream(self, chat: PreparedChat, request_id: str) -> AsyncIterator[str]:
        if chat.self_critic:
            async for line in self._stream_self_critic(chat, request_id):
                yield line
            return
        completion_id, model, created = _completion_id(request_id), chat.request.model, _now()
        n = chat.request.n
        yield chunk(completion_id, model, created,
                    [delta_choice(i, text="", role="assistant") for i in range(n)])
        prompt_tokens = completion_tokens = 0
        generation = GenerationRequest(_engine_id(request_id), chat.prompt, chat.sampling, n)
        async for delta in self.engine.stream(generation):
            prompt_tokens = max(prompt_tokens, delta.prompt_tokens)
            completion_tokens += delta.completion_tokens
            if delta.text or delta.finish_reason or delta.logprobs:
                yield chunk(completion_id, model, created, [delta_choice(
                    delta.index, text=delta.text, finish=delta.finish_reason,
                    logprobs=delta.logprobs)])
        self.metrics.record_generation(prompt_tokens, completion_tokens)
        if chat.request.include_usage():
            yield chunk(completion_id, model, created, [],
                        usage=Usage(prompt_tokens, completion_tokens))
        yield DONE

    async def _stream_self_critic(self, chat: PreparedChat, request_id: str) -> AsyncIterator[str]:
        """Keep the connection alive with SSE comments while the tournament runs, then
        stream the ranked choices (winner first)."""
        completion_id, model, created = _completion_id(request_id), chat.request.model, _now()
        task = asyncio.ensure_future(self._run_self_critic(chat, request_id))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.settings.keepalive_interval_s)
                if done:
                    break
                yield ": self-critic tournament running\n\n"
            result = task.result()
        finally:
            if not task.done():  # the client went away: abort every candidate and judgment
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        choices = result.ranked[: chat.request.n]
        for i, choice in enumerate(choices):
            yield chunk(completion_id, model, created,
                        [delta_choice(i, text="", role="assistant")])
            yield chunk(completion_id, model, created, [delta_choice(
                i, text=choice.text, logprobs=choice.logprobs)])
            yield chunk(completion_id, model, created,
                        [delta_choice(i, finish=choice.finish_reason)])
        report = {"self_critic": result.report.to_dict()}
        usage = Usage(result.usage.prompt_tokens, result.usage.completion_tokens)
        yield chunk(completion_id, model, created, [],
                    usage=usage if chat.request.include_usage() else None, extra=report)
        yield DONE


def _completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def _engine_id(request_id: str) -> str:
    """Engine request ids must be unique even when clients reuse an X-Request-Id."""
    return f"{request_id}-{uuid.uuid4().hex[:8]}"


def _now() -> int:
    return int(time.time())
