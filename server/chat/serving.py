"""Chat completions: plain sampling, or best-of-N with the self-critic knockout
(`server.chat.self_critic_run`), answered whole or streamed, through the lifecycle of
`server.serving.base`.

Everything that needs the engine (model name, images, context length, sampling values)
is checked before any engine work, so bad input is a 400 and never reaches vLLM.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import partial
from typing import Any

from critic_loop.code.grader import CodeGrader
from critic_loop.engine import GenerationRequest, PromptTooLongError, SamplingOptions
from critic_loop.images import prompt_tokens as tokens_with_images
from critic_loop.images import with_images
from critic_loop.prompts import render_prompt
from server.chat.prepared import ChatPlan, PreparedChat
from server.chat.protocol import ChatCompletionRequest
from server.chat.response import chat_completion, chunk, delta_choice
from server.chat.self_critic_options import self_critic_config
from server.chat.self_critic_run import SelfCriticRunner
from server.chat.tools import ToolParser, answer_tool_calls, as_chunks
from server.edge.errors import bad_request
from server.edge.sse import DONE
from server.load.admission import chat_cost
from server.load.capacity import WorkCost
from server.media.images import ImageRef, chat_image_refs, placeholder_messages
from server.protocol.answers import StreamUsage, Usage
from server.serving.base import EndpointServing, ServingContext
from server.serving.ids import created_now, engine_id
from server.serving.judge_fit import fit_candidates
from server.serving.sampling_check import checked_sampling
from server.serving.token_room import room_after_prompt


class ChatServing(EndpointServing[ChatCompletionRequest, ChatPlan, PreparedChat]):
    id_prefix = "chatcmpl"

    def __init__(self, context: ServingContext, grader: CodeGrader | None = None) -> None:
        super().__init__(context)
        settings = self.settings
        self.tool_parser = (ToolParser(settings.tool_call_parser,
                                       getattr(self.engine, "tokenizer", None))
                            if settings.tool_call_parser else None)
        self.self_critic = SelfCriticRunner(self.engine, self.metrics, grader,
                                            settings.keepalive_interval_s)
        self.default_max_tokens = context.defaults.max_tokens or settings.default_max_tokens
        """The candidates' budget when a request sets none: the model's max_new_tokens
        (as vLLM), else --default-max-tokens; capped by what the context leaves."""

    # -- validate, admit -------------------------------------------------------------------
    def validate(self, request: ChatCompletionRequest) -> ChatPlan:
        critic = self_critic_config(request, self.asks_self_critic(request.model),
                                    self.settings)
        if any(m.has_images() for m in request.messages) and not self.engine.supports_images:
            raise bad_request(f"The model {self.engine.model_name!r} reads text only; remove "
                              "the image_url content parts.", param="messages",
                              code="images_not_supported")
        if request.n > self.settings.max_n:
            raise bad_request(f"n must be between 1 and {self.settings.max_n}, got {request.n}.",
                              param="n")
        image_refs = chat_image_refs(request.messages)
        self.context.media.check(image_refs, "messages")
        self._check_tools(request)
        return ChatPlan(request, critic, tuple(image_refs))

    def estimated_cost(self, plan: ChatPlan) -> WorkCost:
        """Message characters for the prompt, and the asked (or default) max_tokens, which
        templating can only lower."""
        request = plan.request
        chars = sum(len(str(m.as_text_dict()["content"])) for m in request.messages)
        max_tokens = request.requested_max_tokens() or self.default_max_tokens
        return chat_cost(chars, request.n, max_tokens, plan.self_critic,
                         self.engine.max_model_len)

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

    # -- prepare, images -------------------------------------------------------------------
    def prepare(self, plan: ChatPlan) -> PreparedChat:
        request = plan.request
        messages = placeholder_messages(request.messages)
        try:
            prompt = render_prompt(self.engine, messages,
                                   request.tool_dicts() if request.tools else None)
        except PromptTooLongError:  # by size alone, before tokenising: a 400 of its own
            raise
        except Exception as exc:  # a chat template rejecting the conversation is bad input
            raise bad_request(f"The model's chat template rejected these messages: {exc}",
                              param="messages") from exc
        max_tokens = self._budget(plan, messages, prompt.tokens)
        return PreparedChat(request, prompt.text, messages, self._sampling(request, max_tokens),
                            plan.self_critic, plan.image_refs, prompt_ids=prompt.token_ids)

    def image_refs(self, chat: PreparedChat) -> tuple[ImageRef, ...]:
        return chat.image_refs

    def with_images(self, chat: PreparedChat, images: list[Any]) -> PreparedChat:
        """The images in place, and the budgets sized again now that their tokens are known."""
        messages = with_images(chat.messages, images)
        plan = ChatPlan(chat.request, chat.self_critic)
        max_tokens = self._budget(plan, messages,
                                  tokens_with_images(self.engine, chat.prompt, images))
        return replace(chat, messages=messages, images=tuple(images),
                       sampling=self._sampling(chat.request, max_tokens))

    def _budget(self, plan: ChatPlan, messages: list[dict[str, Any]], prompt_tokens: int) -> int:
        """The candidates' max_tokens: what the context leaves after the prompt, and with
        self-critic what lets any two of them be judged in one prompt."""
        request = plan.request
        asked = request.requested_max_tokens()
        param = _max_tokens_param(request)
        room = room_after_prompt(self.engine.max_model_len, prompt_tokens, asked or 1,
                                 param=param, prompt_param="messages",
                                 prompt_advice="The messages alone fill it; shorten them.")
        max_tokens = min(self.default_max_tokens, room) if asked is None else asked
        if plan.self_critic is None:
            return max_tokens
        budget = self.judge_budget(messages, plan.self_critic, "messages")
        return fit_candidates(budget, plan.self_critic, max_tokens, asked, param)

    def _sampling(self, request: ChatCompletionRequest, max_tokens: int) -> SamplingOptions:
        def build() -> SamplingOptions:
            sampling = request.sampling(max_tokens, self.context.defaults)
            if (self.tool_parser and request.effective_tool_choice == "auto"
                    and self.tool_parser.keeps_special_tokens(request)):
                sampling = replace(sampling, skip_special_tokens=False)
            return sampling

        return checked_sampling(self.engine, build)

    # -- run -------------------------------------------------------------------------------
    def streams(self, chat: PreparedChat) -> bool:
        return chat.request.stream

    def _generation(self, chat: PreparedChat, request_id: str) -> GenerationRequest:
        """The plain (not self-critic) engine request: `n` samples of the prompt, with the
        judge adapter for `MODEL:judge`."""
        return GenerationRequest(engine_id(request_id), chat.prompt, chat.sampling,
                                 chat.request.n, images=chat.images, prompt_ids=chat.prompt_ids,
                                 adapter=self.adapter_for(chat.request.model))

    async def respond(self, chat: PreparedChat, request_id: str) -> dict[str, Any]:
        if chat.self_critic:
            body = await self.self_critic.complete(chat, request_id, self.answer_id(request_id))
        else:
            (result,) = await self.engine.generate([self._generation(chat, request_id)])
            usage = Usage.of_results([result])
            self.metrics.record_generation(usage.prompt_tokens, usage.completion_tokens)
            body = chat_completion(self.answer_id(request_id), chat.request.model,
                                   result.completions, usage)
        return answer_tool_calls(body, chat.request, self.tool_parser)

    async def stream(self, chat: PreparedChat, request_id: str) -> AsyncIterator[str]:
        request = chat.request
        if request.effective_tool_choice != "none":
            # Tool calls are known once the answer is: answer whole, then send it as chunks
            for line in as_chunks(await self.respond(chat, request_id), request.include_usage()):
                yield line
            return
        line = self._chunk_writer(chat, request_id)
        if chat.self_critic:
            async for event in self.self_critic.stream(chat, request_id, line):
                yield event
            return
        yield line([delta_choice(i, text="", role="assistant") for i in range(request.n)])
        counted = StreamUsage()
        async for delta in self.engine.stream(self._generation(chat, request_id)):
            counted.add(delta)
            if delta.text or delta.finish_reason or delta.logprobs:
                yield line([delta_choice(delta.index, text=delta.text, finish=delta.finish_reason,
                                         logprobs=delta.logprobs)])
        usage = counted.usage()
        self.metrics.record_generation(usage.prompt_tokens, usage.completion_tokens)
        if request.include_usage():
            yield line([], usage=usage)
        yield DONE

    def _chunk_writer(self, chat: PreparedChat, request_id: str) -> Callable[..., str]:
        """`chunk` with this answer's id, model and creation time filled in."""
        return partial(chunk, self.answer_id(request_id), chat.request.model, created_now())


def _max_tokens_param(request: ChatCompletionRequest) -> str:
    """The field the client set the budget with, to name in errors."""
    return "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
