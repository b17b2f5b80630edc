"""Adaptive best-of-N sampling: stop candidates once the answer is settled (opt-in).

Each candidate is its own streamed engine request `{request_id}-cand{i}` (seeded seed + i,
as vLLM seeds the samples of one n=N request), so one can be aborted alone. With
`adaptive="agreement"`, the running candidates are aborted once the leading answer group
among the finished ones cannot be overtaken (`critic_loop.stopping`); `"confidence"` also
aborts a candidate whose group confidence falls below a threshold set from the first
finished ones (DeepConf online). With `adaptive_wave`, candidates start a wave at a time and
a wave is added only while the answer is unsettled. Stopped candidates drop out of the
vote and are not ranked; the tokens they generated are counted once, in the usage.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import (
    Completion,
    Engine,
    EngineError,
    GenerationRequest,
    GenerationResult,
    TokenLogprob,
)
from critic_loop.report import TokenUsage
from critic_loop.stopping import (
    CONFIDENCE_TOP_K,
    GroupConfidence,
    answer_key,
    confidence_threshold,
    settled,
    warm_up_size,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoppedCandidate:
    """A candidate aborted before its end, with the tokens it had generated."""

    index: int
    reason: str
    """"agreement" or "confidence"."""
    completion_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason,
                "completion_tokens": self.completion_tokens}


@dataclass(frozen=True)
class AdaptiveReport:
    """What adaptive sampling started, stopped and finished, and what it saved."""

    mode: str
    candidates: int
    """N, the most that could have been sampled."""
    started: int
    """The N actually used."""
    finished: tuple[int, ...]
    """Sample numbers of the finished candidates: the ranked candidates' order of entry."""
    stopped: tuple[StoppedCandidate, ...]
    waves: int
    threshold: float | None = None
    """The confidence threshold (mode "confidence", once the warm-up finished)."""
    tokens_saved: int = 0
    """Estimated: each stopped or never-started candidate as long as the mean finished one,
    less what a stopped one had generated."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": self.mode, "candidates": self.candidates, "started": self.started,
            "finished": len(self.finished), "stopped": len(self.stopped), "waves": self.waves,
            "tokens_saved": self.tokens_saved,
            "stopped_candidates": [s.to_dict() for s in self.stopped],
            "finished_candidates": list(self.finished)}
        if self.threshold is not None:
            out["confidence_threshold"] = round(self.threshold, 6)
        return out


@dataclass(frozen=True)
class AdaptiveSample:
    """The finished candidates, renumbered 0..m-1 in sample order, and every token spent."""

    result: GenerationResult
    usage: TokenUsage
    """Prompt tokens once (as for one n=N request), and every generated token, stopped
    candidates' included."""
    report: AdaptiveReport


async def sample_adaptively(engine: Engine, request: GenerationRequest,
                            config: SelfCriticConfig) -> AdaptiveSample:
    """Sample up to `request.n` candidates of `request`, stopping as `config.adaptive` says."""
    return await _Sampler(engine, request, config).run()


class _Sampler:
    """The state of one adaptive run: every candidate's text so far and its fate."""

    def __init__(self, engine: Engine, request: GenerationRequest,
                 config: SelfCriticConfig) -> None:
        self.engine, self.request, self.config = engine, request, config
        n = self.n = request.n
        self.wave = config.adaptive_wave or n
        self.confidence = config.adaptive == "confidence"
        self.parts: list[list[str]] = [[] for _ in range(n)]
        self.tokens = [0] * n
        self.logprobs: list[list[TokenLogprob]] = [[] for _ in range(n)]
        self.finish: list[str | None] = [None] * n
        self.keys: dict[int, tuple[str, str]] = {}
        """Per finished candidate, its answer group."""
        self.groups: list[GroupConfidence] = [GroupConfidence() for _ in range(n)]
        self.stopped: dict[int, str] = {}
        self.order: list[int] = []
        """Candidates in the order they finished."""
        self.threshold: float | None = None
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self.started = 0
        self.waves = 0
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.events: asyncio.Queue[BaseException | int] = asyncio.Queue()

    # -- the loop --------------------------------------------------------------------------
    async def run(self) -> AdaptiveSample:
        try:
            self._start_wave()
            while self._running():
                event = await self.events.get()
                if isinstance(event, BaseException):
                    raise event
                await self._decide()
                if not self._running() and self.started < self.n and not self._settled():
                    self._start_wave()
        finally:
            await self._stop([i for i, t in self.tasks.items() if not t.done()], None)
        return self._sample()

    def _running(self) -> list[int]:
        return [i for i in range(self.started)
                if self.finish[i] is None and i not in self.stopped]

    def _settled(self) -> bool:
        counts = list(Counter(self.keys.values()).values())
        return settled(counts, len(self._running()), self.n - self.started,
                       waves=self.wave < self.n)

    async def _decide(self) -> None:
        if self.confidence:
            self._set_threshold()
            if self.threshold is not None:
                low = [i for i in self._running()
                       if (lowest := self.groups[i].full_lowest) is not None
                       and lowest < self.threshold]
                await self._stop(low, "confidence")
        if self._running() and self._settled():
            await self._stop(self._running(), "agreement")

    def _set_threshold(self) -> None:
        warm_up = [i for i in self.order if self.finish[i] != "abort"][:warm_up_size(self.n)]
        if self.threshold is None and len(warm_up) == warm_up_size(self.n):
            lowest = [self.groups[i].lowest for i in warm_up]
            self.threshold = confidence_threshold([x for x in lowest if x is not None])
            logger.debug("%s: confidence threshold %.3f from %d candidates",
                         self.request.request_id, self.threshold, len(warm_up))

    def _start_wave(self) -> None:
        first, last = self.started, min(self.n, self.started + self.wave)
        self.started, self.waves = last, self.waves + 1
        for i in range(first, last):
            self.tasks[i] = asyncio.create_task(self._consume(i))

    async def _stop(self, indices: list[int], reason: str | None) -> None:
        """Abort these candidates in the engine and wait until their streams are closed."""
        if not indices:
            return
        for i in indices:
            if reason is not None:
                self.stopped[i] = reason
            self.tasks[i].cancel()
        await asyncio.gather(*(self.tasks[i] for i in indices), return_exceptions=True)
        # Cancelling a stream aborts its request; say so to the engine as well, in case a
        # remote engine learns of the cancellation only later.
        try:
            await self.engine.abort([self._request_id(i) for i in indices])
        except Exception as error:  # the streams are closed either way
            logger.warning("%s: abort of candidates %s failed: %r", self.request.request_id,
                           indices, error)
        if reason is not None:
            logger.debug("%s: stopped candidates %s (%s)", self.request.request_id, indices,
                         reason)

    # -- one candidate ---------------------------------------------------------------------
    def _request_id(self, i: int) -> str:
        return f"{self.request.request_id}{i}"

    def _candidate_request(self, i: int) -> GenerationRequest:
        sampling = self.request.sampling
        if sampling.seed is not None:
            sampling = replace(sampling, seed=sampling.seed + i)
        if self.confidence:
            sampling = replace(sampling, logprobs=max(sampling.logprobs or 0, CONFIDENCE_TOP_K))
        return replace(self.request, request_id=self._request_id(i), sampling=sampling, n=1)

    async def _consume(self, i: int) -> None:
        try:
            async for delta in self.engine.stream(self._candidate_request(i)):
                self.parts[i].append(delta.text)
                self.tokens[i] += delta.completion_tokens
                self.prompt_tokens = max(self.prompt_tokens, delta.prompt_tokens)
                self.cached_tokens = max(self.cached_tokens, delta.cached_tokens)
                if delta.logprobs:
                    self.logprobs[i].extend(delta.logprobs)
                    before = self.groups[i].full_lowest
                    self.groups[i].add(delta.logprobs)
                    if (self.threshold is not None and self.groups[i].full_lowest != before
                            and self.groups[i].full_lowest < self.threshold):
                        self.events.put_nowait(i)  # run() decides whether it stops
                if delta.finish_reason is not None:
                    self.finish[i] = delta.finish_reason
                    self.keys[i] = answer_key("".join(self.parts[i]),
                                              self.config.answer_format,
                                              self.config.answer_pattern)
                    self.order.append(i)
                    self.events.put_nowait(i)
            if self.finish[i] is None:
                raise EngineError(f"stream {self._request_id(i)} ended before its candidate "
                                  "finished")
        except asyncio.CancelledError:
            if i not in self.stopped:  # not ours: run() must not wait for it
                self.events.put_nowait(EngineError(f"candidate {i} was cancelled"))
            raise
        except Exception as error:  # surfaced by run()
            self.events.put_nowait(error)

    # -- the outcome -----------------------------------------------------------------------
    def _sample(self) -> AdaptiveSample:
        finished = [i for i in range(self.started) if i not in self.stopped
                    and self.finish[i] is not None]
        completions = tuple(self._completion(position, i)
                            for position, i in enumerate(finished))
        generated = sum(self.tokens[:self.started])
        mean = (sum(self.tokens[i] for i in finished) / len(finished)) if finished else 0.0
        saved = sum(max(0.0, mean - self.tokens[i]) for i in self.stopped) + \
            mean * (self.n - self.started)
        report = AdaptiveReport(
            self.config.adaptive, self.n, self.started, tuple(finished),
            tuple(StoppedCandidate(i, r, self.tokens[i]) for i, r in sorted(self.stopped.items())),
            self.waves, self.threshold, round(saved))
        logger.debug("%s: adaptive %s started %d of %d, stopped %d, finished %d",
                     self.request.request_id, self.config.adaptive, self.started, self.n,
                     len(self.stopped), len(finished))
        return AdaptiveSample(
            GenerationResult(self.request.request_id, self.prompt_tokens, completions,
                             cached_tokens=self.cached_tokens),
            TokenUsage(self.prompt_tokens, generated), report)

    def _completion(self, position: int, i: int) -> Completion:
        asked = self.request.sampling.logprobs
        logprobs = None
        if asked is not None and self.logprobs[i]:  # only what the client asked for
            logprobs = tuple(replace(t, top=t.top[:asked]) for t in self.logprobs[i])
        return Completion(position, "".join(self.parts[i]), self.tokens[i],
                          self.finish[i] or "abort", logprobs=logprobs)
