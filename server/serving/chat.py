"""Chat completions: plain sampling, or best-of-N with the self-critic knockout.

Validation that needs the engine (model name, images, context length) happens here,
before any engine work, so bad input is a 400 and never reaches vLLM.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from critic_loop.best_of_n import BestOfNResult, best_of_n
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import (
    Engine,
    GenerationRequest,
    PromptTooLongError,
    SamplingOptions,
)
from critic_loop.images import prompt_tokens as tokens_with_images
from critic_loop.images import with_images
from critic_loop.judge_budget import JOIN_SLACK, judge_budget
from critic_loop.judge_prompt import JudgeMode
from critic_loop.prompts import render_prompt
from server.admission import chat_cost, check_comparisons
from server.capacity import WorkCost
from server.errors import APIError, bad_request, context_length_error
from server.media import ImageRef, MediaPolicy, chat_image_refs, placeholder_messages
from server.metrics import Metrics
from server.protocol.chat import ChatCompletionRequest, SelfCriticOptions
from server.protocol.chat_response import (
    DONE,
    Usage,
    chat_completion,
    chunk,
    delta_choice,
)
from server.protocol.gateway_chunks import keepalive_choice, summary_choice
from server.serving.prefix_cache import CachedTokenCounter
from server.serving.sampling_check import checked_sampling
from server.serving.tools import ToolParser, as_chunks, forced_calls, with_tool_calls
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
    image_refs: tuple[ImageRef, ...] = ()
    """The request's images, checked but not yet loaded (`ChatService.load_images`)."""
    images: tuple[Any, ...] = ()
    """The decoded images, in prompt order; `messages` holds them in place too."""
    prompt_ids: tuple[int, ...] | None = None
    """The prompt's tokens, message text with special tokens split (engine-made)."""


class ChatService:
    """Turns `ChatCompletionRequest`s into engine work and OpenAI-shaped answers."""

    def __init__(self, engine: Engine, settings: ServerSettings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.media = MediaPolicy.from_settings(settings)
        self.tool_parser = (ToolParser(settings.tool_call_parser, getattr(engine, "tokenizer", None))
                            if settings.tool_call_parser else None)

    # -- validation ----------------------------------------------------------------------
    def estimated_cost(self, request: ChatCompletionRequest) -> WorkCost:
        """The admission cost before templating, from the raw request (cheap, on the event
        loop): message characters for the prompt, and the asked (or default) max_tokens,
        which templating can only lower. Raises what `prepare` would for the model name
        and the self_critic options."""
        critic = self._self_critic_config(request, self._check_model(request.model))
        chars = sum(len(str(m.as_text_dict()["content"])) for m in request.messages)
        max_tokens = request.requested_max_tokens() or self.settings.default_max_tokens
        return chat_cost(chars, request.n, max_tokens, critic, self.engine.max_model_len)

    def prepare(self, request: ChatCompletionRequest) -> PreparedChat:
        alias = self._check_model(request.model)
        if any(m.has_images() for m in request.messages) and not self.engine.supports_images:
            raise bad_request(f"The model {self.engine.model_name!r} reads text only; remove "
                              "the image_url content parts.", param="messages",
                              code="images_not_supported")
        if request.n > self.settings.max_n:
            raise bad_request(f"n must be between 1 and {self.settings.max_n}, got {request.n}.",
                              param="n")
        image_refs = chat_image_refs(request.messages)
        self.media.check(image_refs, "messages")
        messages = placeholder_messages(request.messages)
        self._check_tools(request)
        try:  # blocking (template, tokenizer): the route runs prepare in a worker thread
            prompt = render_prompt(self.engine, messages,
                                   request.tool_dicts() if request.tools else None)
        except PromptTooLongError:  # by size alone, before tokenising: a 400 of its own
            raise
        except Exception as exc:  # a chat template rejecting the conversation is bad input
            raise bad_request(f"The model's chat template rejected these messages: {exc}",
                              param="messages") from exc
        max_tokens = self._max_tokens(request, prompt.tokens)
        critic = self._self_critic_config(request, alias)
        if critic is not None:
            max_tokens = self._fit_judge(request, messages, critic, max_tokens)
        sampling = self._sampling(request, max_tokens)
        return PreparedChat(request, prompt.text, messages, sampling, critic,
                            tuple(image_refs), prompt_ids=prompt.token_ids)

    async def load_images(self, chat: PreparedChat) -> PreparedChat:
        """Fetch and decode the request's images, put them in place, and size the token
        budgets again now that the images' own tokens are known (nothing to do without)."""
        if not chat.image_refs:
            return chat
        images = await self.media.load(chat.image_refs)
        messages = with_images(chat.messages, images)

        def budget() -> int:  # the processor measures the images: off the event loop
            max_tokens = self._max_tokens(
                chat.request, tokens_with_images(self.engine, chat.prompt, images))
            if chat.self_critic is not None:
                max_tokens = self._fit_judge(chat.request, messages, chat.self_critic,
                                             max_tokens)
            return max_tokens

        max_tokens = await asyncio.to_thread(budget)
        return replace(chat, messages=messages, images=tuple(images),
                       sampling=self._sampling(chat.request, max_tokens))

    def _sampling(self, request: ChatCompletionRequest, max_tokens: int) -> SamplingOptions:
        """The request's sampling options, checked by the engine before any work (token
        ids in its vocabulary, grammars it can compile), so a bad value is a 400."""
        def build() -> SamplingOptions:
            sampling = request.sampling(max_tokens)
            if (self.tool_parser and request.effective_tool_choice == "auto"
                    and self.tool_parser.keeps_special_tokens(request)):
                sampling = replace(sampling, skip_special_tokens=False)
            return sampling

        return checked_sampling(self.engine, build)

    def _check_tools(self, request: ChatCompletionRequest) -> None:
        """Tool choice "auto" needs a tool parser; named and "required" do not (their
        answers are constrained to JSON), and "none" asks for text."""
        if request.effective_tool_choice != "auto":
            return
        if self.tool_parser is None or not self.settings.enable_auto_tool_choice:
            raise bad_request(
                'tool_choice "auto" (the default when tools are given) needs a tool parser, '
                "and this server was started without one: start it with "
                "--enable-auto-tool-choice --tool-call-parser NAME (e.g. hermes, for a "
                "model whose chat template supports tools). Without a parser, name the "
                'function in tool_choice, send "required", or send "none".',
                param="tool_choice", code="tool_parser_required")

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
        raise context_length_error(
            budget.context, budget.overhead + JOIN_SLACK + 2 * max_tokens, budget.judge_tokens,
            param=param if budget.per_response >= 1 else "messages",
            advice=f"Self-critic judges two candidates in one prompt: the question and "
                   f"instruction take {budget.overhead} tokens, 2 × {param} = {2 * max_tokens}, "
                   f"plus {judge}. To fit, {' or '.join(fixes)}.")

    def _check_model(self, name: str) -> bool:
        base = self.engine.model_name
        if name == base:
            return False
        if name == base + SELF_CRITIC_SUFFIX:
            return True
        raise APIError(404, f"The model {name!r} does not exist. This server serves {base!r} "
                       f"and {base + SELF_CRITIC_SUFFIX!r}.", param="model",
                       code="model_not_found")

    def _max_tokens(self, request: ChatCompletionRequest, prompt_tokens: int) -> int:
        room = self.engine.max_model_len - prompt_tokens
        if room < 1:
            raise context_length_error(self.engine.max_model_len, prompt_tokens,
                                       request.requested_max_tokens() or 1, param="messages",
                                       advice="The messages alone fill it; shorten them.")
        asked = request.requested_max_tokens()
        if asked is None:
            return min(self.settings.default_max_tokens, room)
        if asked > room:
            param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
            raise context_length_error(self.engine.max_model_len, prompt_tokens, asked,
                                       param=param, advice=f"Lower {param} to at most {room}.")
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
        check_comparisons(options.comparisons, s.max_comparisons, "self_critic.comparisons")
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
            result, usage = await self._run_self_critic(chat, request_id)
            return self._with_tool_calls(chat, self._self_critic_body(chat, request_id,
                                                                      result, usage))
        generation = GenerationRequest(_engine_id(request_id), chat.prompt, chat.sampling,
                                       chat.request.n, images=chat.images,
                                       prompt_ids=chat.prompt_ids)
        (result,) = await self.engine.generate([generation])
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
        result = await best_of_n(engine, chat.prompt, chat.messages, chat.sampling,
                                 chat.self_critic, _engine_id(request_id), chat.prompt_ids)
        self.metrics.record_self_critic(result.report)
        return result, Usage(result.usage.prompt_tokens, result.usage.completion_tokens,
                             engine.cached_tokens)

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
        completion_id, model, created = _completion_id(request_id), chat.request.model, _now()
        n = chat.request.n
        yield chunk(completion_id, model, created,
                    [delta_choice(i, text="", role="assistant") for i in range(n)])
        prompt_tokens = completion_tokens = cached_tokens = 0
        generation = GenerationRequest(_engine_id(request_id), chat.prompt, chat.sampling, n,
                                       images=chat.images, prompt_ids=chat.prompt_ids)
        async for delta in self.engine.stream(generation):
            prompt_tokens = max(prompt_tokens, delta.prompt_tokens)
            cached_tokens = max(cached_tokens, delta.cached_tokens)
            completion_tokens += delta.completion_tokens
            if delta.text or delta.finish_reason or delta.logprobs:
                yield chunk(completion_id, model, created, [delta_choice(
                    delta.index, text=delta.text, finish=delta.finish_reason,
                    logprobs=delta.logprobs)])
        self.metrics.record_generation(prompt_tokens, completion_tokens)
        if chat.request.include_usage():
            yield chunk(completion_id, model, created, [],
                        usage=Usage(prompt_tokens, completion_tokens, cached_tokens))
        yield DONE

    async def _stream_self_critic(self, chat: PreparedChat, request_id: str) -> AsyncIterator[str]:
        """Answer at once with the assistant role (gateways wait for a first data chunk),
        keep data flowing while the tournament runs, then stream the ranked choices
        (winner first). The summary rides on a content-free delta of the winner, where
        gateways that rebuild the stream keep it, and on the last chunk as before."""
        completion_id, model, created = _completion_id(request_id), chat.request.model, _now()
        n = chat.request.n
        yield chunk(completion_id, model, created,
                    [delta_choice(i, text="", role="assistant") for i in range(n)])
        task = asyncio.ensure_future(self._run_self_critic(chat, request_id))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.settings.keepalive_interval_s)
                if done:
                    break
                yield chunk(completion_id, model, created, [keepalive_choice()])
            result, usage = task.result()
        finally:
            if not task.done():  # the client went away: abort every candidate and judgment
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        report = result.report.to_dict()
        for i, choice in enumerate(result.ranked[:n]):
            yield chunk(completion_id, model, created, [delta_choice(
                i, text=choice.text, logprobs=choice.logprobs)])
            if i == 0:
                yield chunk(completion_id, model, created, [summary_choice(report)])
            yield chunk(completion_id, model, created,
                        [delta_choice(i, finish=choice.finish_reason)])
        yield chunk(completion_id, model, created, [],
                    usage=usage if chat.request.include_usage() else None,
                    extra={"self_critic": report})
        yield DONE


def _completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def _engine_id(request_id: str) -> str:
    """Engine request ids must be unique even when clients reuse an X-Request-Id."""
    return f"{request_id}-{uuid.uuid4().hex[:8]}"


def _now() -> int:
    return int(time.time())
