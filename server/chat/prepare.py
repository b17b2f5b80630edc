"""Chat validation: a `ChatCompletionRequest` turned into a `PreparedChat` for the engine.

Everything that needs the engine (model name, images, context length, sampling values)
is checked here, before any engine work, so bad input is a 400 and never reaches vLLM.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import Engine, PromptTooLongError, SamplingOptions
from critic_loop.generation_defaults import NO_DEFAULTS, GenerationDefaults
from critic_loop.images import prompt_tokens as tokens_with_images
from critic_loop.images import with_images
from critic_loop.judge_budget import JOIN_SLACK, judge_budget
from critic_loop.judge_prompt import JudgeMode
from critic_loop.prompts import render_prompt
from server.chat.protocol import ChatCompletionRequest
from server.chat.self_critic_options import self_critic_config
from server.chat.tools import ToolParser
from server.edge.errors import bad_request, context_length_error
from server.load.admission import chat_cost
from server.load.capacity import WorkCost
from server.media.images import ImageRef, MediaPolicy, chat_image_refs, placeholder_messages
from server.serving.sampling_check import checked_sampling
from server.serving.served_model import asks_self_critic
from server.serving.token_room import room_after_prompt
from server.settings import ServerSettings


@dataclass(frozen=True)
class PreparedChat:
    """A validated chat request, ready for the engine."""

    request: ChatCompletionRequest
    prompt: str
    messages: list[dict[str, Any]]
    sampling: SamplingOptions
    self_critic: SelfCriticConfig | None
    image_refs: tuple[ImageRef, ...] = ()
    """The request's images, checked but not yet loaded (`ChatPreparer.load_images`)."""
    images: tuple[Any, ...] = ()
    """The decoded images, in prompt order; `messages` holds them in place too."""
    prompt_ids: tuple[int, ...] | None = None
    """The prompt's tokens, message text with special tokens split (engine-made)."""


class ChatPreparer:
    """Checks chat requests against the engine and the server's settings."""

    def __init__(self, engine: Engine, settings: ServerSettings,
                 tool_parser: ToolParser | None,
                 defaults: GenerationDefaults = NO_DEFAULTS) -> None:
        self.engine = engine
        self.settings = settings
        self.tool_parser = tool_parser
        self.media = MediaPolicy.from_settings(settings)
        self.defaults = defaults
        """The model's sampling defaults, for what a request omits (never the judge's)."""
        self.default_max_tokens = defaults.max_tokens or settings.default_max_tokens
        """The candidates' budget when a request sets none: the model's max_new_tokens
        (as vLLM), else --default-max-tokens; capped by what the context leaves."""

    def estimated_cost(self, request: ChatCompletionRequest) -> WorkCost:
        """The admission cost before templating, from the raw request (cheap, on the event
        loop): message characters for the prompt, and the asked (or default) max_tokens,
        which templating can only lower. Raises what `prepare` would for the model name
        and the self_critic options."""
        critic = self_critic_config(request, self._check_model(request.model), self.settings)
        chars = sum(len(str(m.as_text_dict()["content"])) for m in request.messages)
        max_tokens = request.requested_max_tokens() or self.default_max_tokens
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
        critic = self_critic_config(request, alias, self.settings)
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
            sampling = request.sampling(max_tokens, self.defaults)
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
        param = _max_tokens_param(request)
        reason = critic.mode is JudgeMode.REASON
        judge = (f"self_critic.judge_max_tokens = {critic.judge_max_tokens} and "
                 f"{budget.judge_tokens - critic.judge_max_tokens} to end it in a verdict"
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

    def _check_model(self, name: str) -> bool:
        """Whether `name` is the self-critic alias; a 404 unless it is the model or that."""
        return asks_self_critic(name, self.engine.model_name)

    def _max_tokens(self, request: ChatCompletionRequest, prompt_tokens: int) -> int:
        asked = request.requested_max_tokens()
        room = room_after_prompt(self.engine.max_model_len, prompt_tokens, asked or 1,
                                 param=_max_tokens_param(request), prompt_param="messages",
                                 prompt_advice="The messages alone fill it; shorten them.")
        return min(self.default_max_tokens, room) if asked is None else asked


def _max_tokens_param(request: ChatCompletionRequest) -> str:
    """The field the client set the budget with, to name in errors."""
    return "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
