"""The `Engine` protocol over OpenAI-compatible servers (vLLM's own, or a router in front
of several): self-critic in front of a fleet that is already running.

Chat rendering and tokenising happen here with the model's own tokenizer, so prompts,
lengths and judge prompts are exactly what the in-process engine makes; the upstream gets
token ids on `/v1/completions`. All calls of one client request go to one upstream (the
`session_key` callable names the request), and a call whose upstream fails is retried once
on another. A stream that breaks part-way continues each unfinished sample from the
tokens already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx

from critic_loop.config import JUDGE_SUFFIX
from critic_loop.context_length import context_length_message
from critic_loop.engine import (
    JUDGE_ADAPTER,
    Completion,
    EngineError,
    GenerationRequest,
    GenerationResult,
    Message,
    Prompt,
    PromptTooLongError,
    SamplingOptions,
    StreamDelta,
)
from critic_loop.judge_prompt import VERDICT_CHOICES
from critic_loop.runtime.engines.chat_tokenizer import ChatTokenizer
from critic_loop.runtime.engines.upstream_config import (
    Transport,
    UpstreamConfig,
    client_for,
    discover_model,
    load_tokenizer,
    takes_vllm_extras,
)
from critic_loop.runtime.engines.upstream_pool import Upstream, UpstreamPool
from critic_loop.runtime.engines.upstream_wire import (
    RawChoice,
    StreamProgress,
    TokenReader,
    UpstreamFailure,
    check_response,
    completion_body,
    failures,
    raw_choice,
)
from critic_loop.verdict_tokens import verdict_token_ids

logger = logging.getLogger(__name__)


class UpstreamEngine:
    """An `Engine` whose model runs on other servers."""

    supports_images = False
    self_healing = True
    """Unhealthy only while every upstream is ejected; probing brings them back, so the
    server answers 503 meanwhile instead of exiting."""

    def __init__(self, config: UpstreamConfig, tokenizer: Any, model: str,
                 max_model_len: int, session_key: Callable[[], str | None],
                 transport: Transport | None = None, judge_model: str | None = None) -> None:
        self.config = config
        self.model_name = model
        self.judge_model = judge_model
        """The upstream's name for the model with its judge adapter (`MODEL:judge`, when it
        lists one): judgments go to it, answers to `model`."""
        self.has_judge_adapter = judge_model is not None
        self.max_model_len = max_model_len
        self._tokenizer = tokenizer
        # Message text stays text (special-token strings split) with a fast tokenizer,
        # as in-process; any other tokenizer encodes the rendered prompt as a whole.
        self._chat = (ChatTokenizer(tokenizer, max_model_len)
                      if hasattr(tokenizer, "backend_tokenizer") else None)
        self._session_key = session_key
        self._choice_ids = verdict_token_ids(tokenizer, VERDICT_CHOICES)
        special_ids = frozenset(tokenizer.all_special_ids)
        self._reader = TokenReader(lambda i: tokenizer.decode([i]), special_ids,
                                   frozenset(tokenizer.all_special_tokens))
        self._running: dict[str, set[asyncio.Task[Any]]] = {}
        self.pool = UpstreamPool(
            [Upstream(i, url, client_for(url, config, i, transport))
             for i, url in enumerate(config.urls)],
            probe=self._probe, probe_interval_s=config.probe_interval_s)

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer, loaded here: vLLM's tool parsers (`--tool-call-parser`)
        read calls from an upstream's answers with it, as they do in-process."""
        return self._tokenizer

    @classmethod
    async def connect(cls, config: UpstreamConfig,
                      session_key: Callable[[], str | None] = lambda: None,
                      transport: Transport | None = None,
                      tokenizer: Any = None) -> UpstreamEngine:
        """Find the model on the first upstream that answers (waiting up to
        `connect_wait_s`), load its tokenizer (unless given), admit every upstream that
        answers, and start probing the others."""
        entry, listed = await discover_model(config, transport)
        if tokenizer is None:
            tokenizer = await load_tokenizer(config.tokenizer or entry.get("root")
                                              or entry["id"], entry["id"])
        judge = entry["id"] + JUDGE_SUFFIX
        engine = cls(config, tokenizer, entry["id"],
                     int(entry.get("max_model_len") or config.max_model_len), session_key,
                     transport, judge_model=judge if judge in listed else None)
        if engine.judge_model is not None:
            logger.info("Upstream lists %s: judgments run with its judge adapter", judge)
        for upstream in engine.pool.upstreams:
            if await engine._probe(upstream):
                engine.pool.admit(upstream, readmitted=False)
            else:
                logger.warning("Upstream %s does not answer yet; probing it every %g s",
                               upstream.name, config.probe_interval_s)
        engine.pool.start_probing()
        return engine

    # -- Engine protocol -------------------------------------------------------------
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        prompt_ids = self._prompt_ids(request)
        copies = _greedy_copies(request)
        top = request.sampling.logprobs
        first = True
        with self._tracked(request.request_id):
            async with contextlib.aclosing(
                    self._stream_with_failover(request, prompt_ids, copies)) as pieces:
                async for piece in pieces:
                    tokens = (len(piece.token_ids) if piece.token_ids is not None
                              else self.count_tokens(piece.text))
                    logprobs = (None if top is None
                                else self._reader.token_logprobs(piece.logprobs, top))
                    for copy in range(copies):
                        yield StreamDelta(
                            index=piece.index + copy, text=piece.text,
                            completion_tokens=tokens, finish_reason=piece.finish_reason,
                            logprobs=logprobs, prompt_tokens=len(prompt_ids) if first else 0)
                        first = False

    def render_chat(self, messages: Sequence[Message],
                    tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        return self._tokenizer.apply_chat_template(
            [dict(m) for m in messages], tools=[dict(t) for t in tools] if tools else None,
            tokenize=False, add_generation_prompt=True)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def render_prompt(self, messages: Sequence[Message],
                      tools: Sequence[Mapping[str, Any]] | None = None) -> Prompt:
        if self._chat is None:
            text = self.render_chat(messages, tools)
            return Prompt(text, self.count_tokens(text))
        text, ids = self._chat.render(messages, self.render_chat, tools)
        return Prompt(text, len(ids), tuple(ids))

    def count_text_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._chat is None:
            return [self.count_tokens(t) for t in texts]
        return self._chat.count_text(texts)

    def encode_text(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """`EncodesText`: message-content ids, as `render_prompt` tokenises them."""
        if self._chat is None:
            return [tuple(self._encode(t)) for t in texts]
        return self._chat.encode_text(texts)

    async def is_healthy(self) -> bool:
        return self.pool.any_admitted()

    async def abort(self, request_ids: Sequence[str]) -> None:
        """Cancel the calls; closing their connections makes vLLM abort them."""
        for request_id in request_ids:
            for task in self._running.get(request_id, ()):
                task.cancel()

    async def close(self) -> None:
        await self.pool.stop_probing()
        await asyncio.gather(*(u.client.aclose() for u in self.pool.upstreams))

    # -- one call, failing over once ---------------------------------------------------
    async def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        prompt_ids = self._prompt_ids(request)
        with self._tracked(request.request_id):
            key, tried = self._session_key(), None
            while True:
                upstream = self.pool.pick(key, exclude=tried)
                try:
                    return await self._complete(upstream, request, prompt_ids)
                except UpstreamFailure as exc:
                    tried = self._failed(upstream, request.request_id, exc, tried)

    def _failed(self, upstream: Upstream, request_id: str, exc: UpstreamFailure,
                tried: Upstream | None) -> Upstream:
        """Eject a failed upstream; raise if this was the call's second try."""
        if exc.eject:
            self.pool.eject(upstream, str(exc))
        if tried is not None:
            raise EngineError(f"{request_id} failed on two upstreams; last: {exc}") from exc
        logger.warning("%s: upstream %s failed (%s); failing over", request_id,
                       upstream.name, exc)
        return upstream

    async def _complete(self, upstream: Upstream, request: GenerationRequest,
                        prompt_ids: list[int]) -> GenerationResult:
        copies = _greedy_copies(request)
        body = self._body(upstream, request, prompt_ids, request.sampling, request.n // copies)
        with self.pool.lease(upstream):
            data = await self._post(upstream, body, request.request_id)
        completions = [self._completion(raw_choice(c), request.sampling)
                       for c in sorted(data.get("choices") or [], key=lambda c: c["index"])]
        if not completions:
            raise UpstreamFailure("the upstream answered without choices")
        if copies > 1:  # greedy n > 1: every sample is the same
            completions = [replace(completions[0], index=i) for i in range(copies)]
        details = (data.get("usage") or {}).get("prompt_tokens_details") or {}
        return GenerationResult(request.request_id, len(prompt_ids), tuple(completions),
                                cached_tokens=details.get("cached_tokens") or 0)

    async def _stream_with_failover(self, request: GenerationRequest, prompt_ids: list[int],
                                    copies: int) -> AsyncIterator[RawChoice]:
        n = request.n // copies
        key = self._session_key()
        upstream = self.pool.pick(key)
        sent = StreamProgress(n)
        try:
            body = self._body(upstream, request, prompt_ids, request.sampling, n)
            async with contextlib.aclosing(
                    self._stream_on(upstream, body, request.request_id)) as pieces:
                async for piece in pieces:
                    sent.add(piece)
                    yield piece
            if not sent.finished():
                raise UpstreamFailure("the stream ended before every sample finished")
            return
        except UpstreamFailure as exc:
            failed = self._failed(upstream, request.request_id, exc, None)
        backup = self.pool.pick(key, exclude=failed)
        try:
            if sent.started():
                for index in sent.unfinished():
                    yield await self._continue(backup, request, prompt_ids, sent, index)
                return
            body = self._body(backup, request, prompt_ids, request.sampling, n)
            async with contextlib.aclosing(
                    self._stream_on(backup, body, request.request_id)) as pieces:
                async for piece in pieces:
                    yield piece
        except UpstreamFailure as exc:
            self._failed(backup, request.request_id, exc, failed)

    async def _continue(self, upstream: Upstream, request: GenerationRequest,
                        prompt_ids: list[int], sent: StreamProgress, index: int) -> RawChoice:
        """The rest of sample `index`, generated from the prompt plus its tokens so far."""
        done = sent.token_ids(index, self._encode)
        options = request.sampling
        rest = replace(options, max_tokens=max(1, options.max_tokens - len(done)))
        body = self._body(upstream, request, prompt_ids + done, rest, 1)
        with self.pool.lease(upstream):
            data = await self._post(upstream, body, f"{request.request_id}-c{index}")
        choice = raw_choice((data.get("choices") or [{}])[0])
        return replace(choice, index=index, finish_reason=choice.finish_reason or "abort")

    # -- HTTP --------------------------------------------------------------------------
    async def _post(self, upstream: Upstream, body: dict[str, Any],
                    request_id: str) -> dict[str, Any]:
        with failures():
            response = await upstream.client.post("/v1/completions", json=body,
                                                  headers={"X-Request-Id": request_id})
            check_response(response)
            return response.json()

    async def _stream_on(self, upstream: Upstream, body: dict[str, Any],
                         request_id: str) -> AsyncIterator[RawChoice]:
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with failures(), self.pool.lease(upstream):
            async with upstream.client.stream("POST", "/v1/completions", json=body,
                                              headers={"X-Request-Id": request_id}) as response:
                if response.status_code != 200:
                    await response.aread()
                    check_response(response)
                async for line in response.aiter_lines():
                    payload = line[5:].strip() if line.startswith("data:") else ""
                    if payload == "[DONE]":
                        return
                    if payload:
                        event = json.loads(payload)
                        if "error" in event:
                            raise UpstreamFailure(f"stream error: {event['error']}")
                        for choice in event.get("choices") or []:
                            yield raw_choice(choice)
            raise UpstreamFailure("the stream closed without [DONE]")

    async def _probe(self, upstream: Upstream) -> bool:
        """Whether `upstream` serves (`/health`, else `/v1/models`); also learns whether
        it takes vLLM's extras, which fast verdicts use."""
        try:
            response = await upstream.client.get("/health")
            if response.status_code == 404:
                response = await upstream.client.get("/v1/models")
            if response.status_code != 200:
                return False
            prompt = self._encode(self.render_chat([{"role": "user", "content": "1 or 2?"}]))
            upstream.vllm_extras = await takes_vllm_extras(upstream, self.model_name, prompt,
                                                           self._choice_ids)
        except (httpx.TransportError, ValueError):  # unreachable, or answers that are not JSON
            return False
        return True

    # -- helpers -----------------------------------------------------------------------
    def _body(self, upstream: Upstream, request: GenerationRequest, prompt_ids: list[int],
              options: SamplingOptions, n: int) -> dict[str, Any]:
        judge = request.adapter == JUDGE_ADAPTER and self.judge_model is not None
        model = self.judge_model if judge else self.model_name
        return completion_body(model, prompt_ids, options, n, upstream.vllm_extras,
                               self._choice_ids)

    def _completion(self, raw: RawChoice, options: SamplingOptions) -> Completion:
        tokens = len(raw.token_ids) if raw.token_ids is not None else self.count_tokens(raw.text)
        if options.choices:
            return Completion(raw.index, raw.text, 1, raw.finish_reason or "length",
                              choice_logprobs=self._reader.choice_logprobs(
                                  raw.logprobs, self._choice_ids))
        logprobs = (None if options.logprobs is None
                    else self._reader.token_logprobs(raw.logprobs, options.logprobs))
        return Completion(raw.index, raw.text, tokens, raw.finish_reason or "abort",
                          logprobs=logprobs)

    def _encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        ids = (self._encode(request.prompt) if request.prompt_ids is None
               else list(request.prompt_ids))
        max_tokens = 1 if request.sampling.choices else request.sampling.max_tokens
        if len(ids) + max_tokens > self.max_model_len:
            raise PromptTooLongError(
                context_length_message(self.max_model_len, len(ids), max_tokens))
        return ids

    def _tracked(self, request_id: str) -> _Tracked:
        return _Tracked(self._running, request_id)


class _Tracked:
    """Registers the current task under a request id while a call runs (for `abort`)."""

    def __init__(self, running: dict[str, set[asyncio.Task[Any]]], request_id: str) -> None:
        self.running, self.request_id = running, request_id
        self.task = asyncio.current_task()

    def __enter__(self) -> None:
        if self.task is not None:
            self.running.setdefault(self.request_id, set()).add(self.task)

    def __exit__(self, *_: object) -> None:
        tasks = self.running.get(self.request_id)
        if tasks is not None and self.task is not None:
            tasks.discard(self.task)
            if not tasks:
                del self.running[self.request_id]


def _greedy_copies(request: GenerationRequest) -> int:
    """vLLM refuses n > 1 without sampling (a temperature under its 1e-5); one greedy sample
    stands for all n."""
    return request.n if request.sampling.temperature < 1e-5 and request.n > 1 else 1
