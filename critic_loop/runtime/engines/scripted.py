"""A scripted engine: answers from a Python function, counts calls, no model.

Tests and demos use it to drive the self-critic logic and the server deterministically.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from critic_loop.context_length import context_length_message
from critic_loop.engine import (
    Completion,
    EngineProgress,
    GenerationRequest,
    GenerationResult,
    InvalidRequestError,
    Message,
    Prompt,
    PromptTooLongError,
    SamplingOptions,
    StreamDelta,
    check_ids_in_vocabulary,
)
from critic_loop.images import images_of

Responder = Callable[[GenerationRequest, int], "str | Completion"]
"""Answers sample `index` of a request with its text (or a whole `Completion`)."""


def echo_responder(request: GenerationRequest, index: int) -> str:
    """Default script: a fast judgment picks "1"; anything else says which sample it is."""
    if request.sampling.choices:
        return request.sampling.choices[0]
    return f"sample {index} of {request.request_id}"


class ScriptedEngine:
    """An `Engine` whose outputs come from `responder`; one word is one token."""

    def __init__(self, responder: Responder = echo_responder, *, model_name: str = "scripted",
                 max_model_len: int = 2048, token_delay_s: float = 0.0,
                 supports_images: bool = False, image_tokens: int = 1,
                 vocabulary: int = 50_000, has_judge_adapter: bool = False) -> None:
        self.model_name = model_name
        self.has_judge_adapter = has_judge_adapter
        """Whether it plays an engine with a judge adapter (requests keep their `adapter`)."""
        self.vocabulary = vocabulary
        """Token ids a prompt may hold: 0 to vocabulary - 1."""
        self.max_model_len = max_model_len
        self.supports_images = supports_images
        self.image_tokens = image_tokens
        """Tokens one image takes in a prompt (its "<image>" placeholder is one of them)."""
        self.responder = responder
        self.token_delay_s = token_delay_s
        self.generate_calls: list[list[GenerationRequest]] = []
        self.requests: list[GenerationRequest] = []
        """Every request, generated or streamed, in arrival order."""
        self.rendered: list[str] = []
        """Every prompt `render_prompt` rendered, in order."""
        self._seen_prompts: set[str] = set()
        """Prompts answered before: their tokens count as prefix-cache hits."""
        self.running: set[str] = set()
        self.aborted: list[str] = []
        self.healthy = True
        self.outputs = 0
        """Tokens produced so far (the progress signal; see `progress`)."""

    # -- Engine protocol -------------------------------------------------------------
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.generate_calls.append(list(requests))
        self.requests.extend(requests)
        return list(await asyncio.gather(*(self._run(r) for r in requests)))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        self._check_fits(request)
        self.requests.append(request)
        cached_tokens = self._cached_tokens(request.prompt)
        self.running.add(request.request_id)
        try:
            completions = [self._complete(request, i) for i in range(request.n)]
            prompt_tokens = self._prompt_tokens(request)
            for c in completions:
                words = _split_keep_space(c.text)
                for k, word in enumerate(words):
                    await asyncio.sleep(self.token_delay_s)
                    last = k == len(words) - 1
                    self.outputs += 1
                    yield StreamDelta(index=c.index, text=word, completion_tokens=1,
                                      finish_reason=c.finish_reason if last else None,
                                      logprobs=c.logprobs[k:k + 1] if c.logprobs else None,
                                      prompt_tokens=prompt_tokens,
                                      cached_tokens=cached_tokens)
                if not words:
                    yield StreamDelta(index=c.index, text="", completion_tokens=0,
                                      finish_reason=c.finish_reason, prompt_tokens=prompt_tokens)
        except asyncio.CancelledError:
            self.aborted.append(request.request_id)
            raise
        finally:
            self.running.discard(request.request_id)

    def render_chat(self, messages: Sequence[Message],
                    tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        lines = [f"<|tools|> {json.dumps(list(tools))}"] if tools else []
        for m in messages:
            content = m.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "<image>")) for p in content)
            lines.append(f"<|{m.get('role')}|> {content}")
        return "\n".join(lines) + "\n<|assistant|>"

    def count_tokens(self, text: str, images: Sequence[Any] = ()) -> int:
        return len(text.split()) + (self.image_tokens - 1) * len(images)

    def _prompt_tokens(self, request: GenerationRequest) -> int:
        """The ids given with the request (a token-id prompt), else its words."""
        if request.prompt_ids is not None:
            return len(request.prompt_ids) + (self.image_tokens - 1) * len(request.images)
        return self.count_tokens(request.prompt, request.images)

    def render_prompt(self, messages: Sequence[Message],
                      tools: Sequence[Mapping[str, Any]] | None = None) -> Prompt:
        """`render_chat` and its length (`RendersPrompts`); the words of a message are
        words here whatever they spell, as a real engine keeps message text as text."""
        text = self.render_chat(messages, tools)
        self.rendered.append(text)
        return Prompt(text, self.count_tokens(text, images_of(messages)))

    def count_text_tokens(self, texts: Sequence[str]) -> list[int]:
        return [self.count_tokens(t) for t in texts]

    def check_prompt_ids(self, ids: Sequence[int]) -> None:
        check_ids_in_vocabulary(ids, self.vocabulary)

    def check_sampling(self, options: SamplingOptions) -> None:
        """Rejects what any engine would: a regex or JSON schema that does not parse."""
        structured = options.structured
        try:
            if structured and structured.regex is not None:
                re.compile(structured.regex)
            if structured and structured.json_schema is not None:
                json.loads(structured.json_schema)
        except (re.error, ValueError) as exc:
            raise InvalidRequestError(f"invalid structured output: {exc}",
                                      "response_format") from exc

    async def is_healthy(self) -> bool:
        return self.healthy

    async def abort(self, request_ids: Sequence[str]) -> None:
        self.aborted.extend(request_ids)

    def progress(self) -> EngineProgress:
        return EngineProgress(outputs=self.outputs, in_flight=len(self.running))

    async def close(self) -> None:
        self.healthy = False

    # -- helpers ---------------------------------------------------------------------
    async def _run(self, request: GenerationRequest) -> GenerationResult:
        self._check_fits(request)
        self.running.add(request.request_id)
        try:
            completions = tuple(self._complete(request, i) for i in range(request.n))
            longest = max((c.completion_tokens for c in completions), default=0)
            await asyncio.sleep(self.token_delay_s * longest)
            self.outputs += max(longest, 1)
        except asyncio.CancelledError:
            self.aborted.append(request.request_id)
            raise
        finally:
            self.running.discard(request.request_id)
        return GenerationResult(request.request_id,
                                self._prompt_tokens(request), completions,
                                cached_tokens=self._cached_tokens(request.prompt))

    def _complete(self, request: GenerationRequest, index: int) -> Completion:
        answer = self.responder(request, index)
        if isinstance(answer, Completion):
            return replace(answer, index=index)
        options = request.sampling
        if options.choices:
            logprobs = {c: (0.0 if c == answer else -math.inf) for c in options.choices}
            return Completion(index, answer, 1, "length", choice_logprobs=logprobs)
        words = _split_keep_space(answer)
        finish = "stop"
        if len(words) > options.max_tokens:
            words, finish = words[: options.max_tokens], "length"
        return Completion(index, "".join(words), len(words), finish)

    def _cached_tokens(self, prompt: str) -> int:
        cached = self.count_tokens(prompt) if prompt in self._seen_prompts else 0
        self._seen_prompts.add(prompt)
        return cached

    def _check_fits(self, request: GenerationRequest) -> None:
        prompt_tokens = self._prompt_tokens(request)
        if prompt_tokens + request.sampling.max_tokens > self.max_model_len:
            raise PromptTooLongError(context_length_message(
                self.max_model_len, prompt_tokens,
                request.sampling.max_tokens))


def _split_keep_space(text: str) -> list[str]:
    """Words with their leading space, so joining them gives the text back."""
    pieces: list[str] = []
    for i, word in enumerate(text.split(" ")):
        pieces.append(word if i == 0 else " " + word)
    return [p for p in pieces if p]
