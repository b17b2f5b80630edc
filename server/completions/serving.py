"""Legacy completions: each raw prompt (no chat template) sampled `n` times, all prompts
submitted together so the engine batches them; streamed, their deltas interleave.

Like chat, everything that needs the engine (model name, context length, sampling values)
is checked here before any engine work, so bad input is a 400.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from critic_loop.engine import (
    GenerationRequest,
    InvalidRequestError,
    PromptIdChecker,
    SamplingOptions,
    StreamDelta,
)
from server.completions.protocol import (
    CompletionRequest,
    choices_of,
    completion_choice,
    completion_logprobs,
    text_completion,
)
from server.edge.errors import bad_request
from server.edge.sse import DONE, sse_event
from server.load.admission import CHARS_PER_TOKEN, chat_cost
from server.load.cancellation import cancel_all
from server.load.capacity import WorkCost
from server.protocol.answers import StreamUsage, Usage
from server.serving.base import EndpointServing
from server.serving.ids import created_now, engine_id
from server.serving.sampling_check import checked_sampling
from server.serving.token_room import room_after_prompt

DEFAULT_MAX_TOKENS = 16
"""As OpenAI's and vLLM's, also for a `max_tokens` of null."""

PromptInput = str | tuple[int, ...]
"""One prompt: its text, or its token ids (sent to the engine as they are)."""


@dataclass(frozen=True)
class CompletionPlan:
    """A validated completions request: its prompts and each one's asked budget."""

    request: CompletionRequest
    prompts: tuple[PromptInput, ...]

    @property
    def max_tokens(self) -> int:
        return self.request.max_tokens or DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class PreparedCompletion:
    """A prepared completions request: one sampling per prompt (budgets differ)."""

    request: CompletionRequest
    prompts: tuple[PromptInput, ...]
    samplings: tuple[SamplingOptions, ...]
    adapter: str | None = None
    """`MODEL:judge`'s judge adapter, else None."""

    def generations(self, request_id: str) -> list[GenerationRequest]:
        return [GenerationRequest(f"{engine_id(request_id)}-{i}",
                                  prompt if isinstance(prompt, str) else "", sampling,
                                  self.request.n,
                                  prompt_ids=None if isinstance(prompt, str) else prompt,
                                  adapter=self.adapter)
                for i, (prompt, sampling) in enumerate(zip(self.prompts, self.samplings,
                                                           strict=True))]


class CompletionServing(EndpointServing[CompletionRequest, CompletionPlan, PreparedCompletion]):
    """Turns `CompletionRequest`s into engine work and `text_completion` answers."""

    id_prefix = "cmpl"
    plain_only_at = "/v1/completions"

    def validate(self, request: CompletionRequest) -> CompletionPlan:
        self.asks_self_critic(request.model)
        prompts = request.prompts()
        if len(prompts) * request.n > self.settings.max_n:
            raise bad_request(f"n × prompts must be at most {self.settings.max_n}, got "
                              f"{request.n} × {len(prompts)}.", param="n")
        return CompletionPlan(request, tuple(prompts))

    def estimated_cost(self, plan: CompletionPlan) -> WorkCost:
        """Each prompt's characters (a token-id prompt's as text of that many tokens),
        sampled `n` times with the asked budget."""
        costs = [chat_cost(len(p) if isinstance(p, str) else int(len(p) * CHARS_PER_TOKEN),
                           plan.request.n, plan.max_tokens, None) for p in plan.prompts]
        return WorkCost(sum(c.sequences for c in costs), sum(c.tokens for c in costs))

    def prepare(self, plan: CompletionPlan) -> PreparedCompletion:
        request, defaults = plan.request, self.context.defaults
        samplings = tuple(checked_sampling(self.engine, lambda p=p: request.sampling(
            self._max_tokens(plan, p), defaults)) for p in plan.prompts)
        return PreparedCompletion(request, plan.prompts, samplings,
                                  self.adapter_for(request.model))

    def _max_tokens(self, plan: CompletionPlan, prompt: PromptInput) -> int:
        if isinstance(prompt, str):
            tokens = self.engine.count_tokens(prompt)
        else:
            if isinstance(self.engine, PromptIdChecker):
                try:
                    self.engine.check_prompt_ids(prompt)
                except InvalidRequestError as exc:
                    raise bad_request(str(exc), param=exc.param) from exc
            tokens = len(prompt)
        room_after_prompt(self.engine.max_model_len, tokens,
                          plan.max_tokens, param="max_tokens", prompt_param="prompt",
                          prompt_advice="The prompt alone fills it; shorten it.")
        return plan.max_tokens

    def streams(self, prepared: PreparedCompletion) -> bool:
        return prepared.request.stream

    # -- answers ---------------------------------------------------------------------------
    async def respond(self, prepared: PreparedCompletion, request_id: str) -> dict[str, Any]:
        results = await self.engine.generate(prepared.generations(request_id))
        request, n = prepared.request, prepared.request.n
        choices = [choice for i, result in enumerate(results) for choice in choices_of(
            result.completions, i * n, prepared.prompts[i] if request.echo else None)]
        usage = Usage.of_results(results)
        self.metrics.record_generation(usage.prompt_tokens, usage.completion_tokens)
        return text_completion(self.answer_id(request_id), request.model, created_now(), choices,
                               usage)

    async def stream(self, prepared: PreparedCompletion, request_id: str) -> AsyncIterator[str]:
        request, n = prepared.request, prepared.request.n
        completion_id, created = self.answer_id(request_id), created_now()

        def line(index: int, text: str, finish: str | None = None,
                 logprobs: dict[str, Any] | None = None) -> str:
            return sse_event(text_completion(completion_id, request.model, created,
                                         [completion_choice(index, text, finish, logprobs)]))

        offsets: dict[int, int] = {}  # characters sent per choice, for the logprobs' text_offset
        if request.echo:
            for i, prompt in enumerate(prepared.prompts):
                for j in range(n):
                    offsets[i * n + j] = len(prompt)
                    yield line(i * n + j, prompt)
        counted = StreamUsage()
        async for i, delta in _interleaved([self.engine.stream(g) for g in
                                            prepared.generations(request_id)]):
            counted.add(delta, stream=i)
            if delta.text or delta.finish_reason or delta.logprobs:
                index = i * n + delta.index
                offset = offsets.get(index, 0)
                offsets[index] = offset + len(delta.text)
                yield line(index, delta.text, delta.finish_reason,
                           completion_logprobs(delta.logprobs, offset))
        usage = counted.usage()
        self.metrics.record_generation(usage.prompt_tokens, usage.completion_tokens)
        if request.include_usage():
            yield sse_event(text_completion(completion_id, request.model, created, [], usage))
        yield DONE


async def _interleaved(streams: Sequence[AsyncIterator[StreamDelta]]
                       ) -> AsyncIterator[tuple[int, StreamDelta]]:
    """Deltas of several streams as they arrive, each with its stream's position; the
    first failure is raised, and leaving early cancels every stream (aborting its work)."""
    if len(streams) == 1:  # the common case needs no tasks
        async for delta in streams[0]:
            yield 0, delta
        return
    queue: asyncio.Queue[tuple[int, StreamDelta | BaseException | None]] = asyncio.Queue()

    async def pump(i: int, stream: AsyncIterator[StreamDelta]) -> None:
        try:
            async for delta in stream:
                await queue.put((i, delta))
            await queue.put((i, None))
        except Exception as exc:
            await queue.put((i, exc))

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            i, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield i, item
    finally:
        await cancel_all(tasks)

