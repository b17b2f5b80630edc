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

from critic_loop.engine import Engine, GenerationRequest, SamplingOptions, StreamDelta
from critic_loop.generation_defaults import NO_DEFAULTS, GenerationDefaults
from server.chat.response import DONE, Usage
from server.completions.protocol import (
    CompletionRequest,
    choices_of,
    completion_choice,
    completion_logprobs,
    event,
    text_completion,
)
from server.edge.errors import bad_request
from server.load.admission import chat_cost
from server.load.capacity import WorkCost
from server.load.metrics import Metrics
from server.serving.ids import created_now, engine_id
from server.serving.sampling_check import checked_sampling
from server.serving.served_model import model_not_found, served_names
from server.serving.stream_usage import StreamUsage
from server.serving.token_room import room_after_prompt
from server.settings import ServerSettings


@dataclass(frozen=True)
class PreparedCompletion:
    """A validated completions request: one sampling per prompt (budgets differ)."""

    request: CompletionRequest
    prompts: tuple[str, ...]
    samplings: tuple[SamplingOptions, ...]

    @property
    def cost(self) -> WorkCost:
        costs = [chat_cost(len(p), self.request.n, s.max_tokens, None)
                 for p, s in zip(self.prompts, self.samplings, strict=True)]
        return WorkCost(sum(c.sequences for c in costs), sum(c.tokens for c in costs))

    def generations(self, request_id: str) -> list[GenerationRequest]:
        return [GenerationRequest(f"{engine_id(request_id)}-{i}", prompt, sampling,
                                  self.request.n)
                for i, (prompt, sampling) in enumerate(zip(self.prompts, self.samplings,
                                                           strict=True))]


class CompletionService:
    """Turns `CompletionRequest`s into engine work and `text_completion` answers."""

    def __init__(self, engine: Engine, settings: ServerSettings, metrics: Metrics,
                 defaults: GenerationDefaults = NO_DEFAULTS) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.defaults = defaults
        """The model's sampling defaults, for what a request omits."""

    def prepare(self, request: CompletionRequest) -> PreparedCompletion:
        self._check_model(request.model)
        prompts = request.prompts()
        if len(prompts) * request.n > self.settings.max_n:
            raise bad_request(f"n × prompts must be at most {self.settings.max_n}, got "
                              f"{request.n} × {len(prompts)}.", param="n")
        samplings = tuple(checked_sampling(self.engine, lambda p=p: request.sampling(
            self._max_tokens(request, p), self.defaults)) for p in prompts)
        return PreparedCompletion(request, tuple(prompts), samplings)

    def _check_model(self, name: str) -> None:
        base, alias = served_names(self.engine.model_name)
        if name == alias:
            raise bad_request("Self-critic runs on /v1/chat/completions; /v1/completions "
                              f"serves {base!r} only.", param="model")
        if name != base:
            raise model_not_found(name, base)

    def _max_tokens(self, request: CompletionRequest, prompt: str) -> int:
        prompt_tokens = self.engine.count_tokens(prompt)
        asked = request.max_tokens or 16
        room_after_prompt(self.engine.max_model_len, prompt_tokens, asked, param="max_tokens",
                          prompt_param="prompt", prompt_advice="The prompt alone fills it; shorten it.")
        return asked

    # -- answers ---------------------------------------------------------------------------
    async def complete(self, prepared: PreparedCompletion, request_id: str) -> dict[str, Any]:
        results = await self.engine.generate(prepared.generations(request_id))
        request, n = prepared.request, prepared.request.n
        choices = [choice for i, result in enumerate(results) for choice in choices_of(
            result.completions, i * n, prepared.prompts[i] if request.echo else None)]
        usage = Usage(sum(r.prompt_tokens for r in results),
                      sum(r.completion_tokens for r in results),
                      sum(r.cached_tokens for r in results))
        self.metrics.record_generation(usage.prompt_tokens, usage.completion_tokens)
        return text_completion(_completion_id(request_id), request.model, created_now(), choices,
                               usage)

    async def stream(self, prepared: PreparedCompletion, request_id: str) -> AsyncIterator[str]:
        request, n = prepared.request, prepared.request.n
        completion_id, created = _completion_id(request_id), created_now()

        def line(index: int, text: str, finish: str | None = None,
                 logprobs: dict[str, Any] | None = None) -> str:
            return event(text_completion(completion_id, request.model, created,
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
            yield event(text_completion(completion_id, request.model, created, [], usage))
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
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _completion_id(request_id: str) -> str:
    return f"cmpl-{request_id}"
