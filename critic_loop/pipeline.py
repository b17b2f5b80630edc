"""The pipelined schedule: judge a pair as soon as both its candidates have finished.

The candidates stream from one request (n=N); whenever one finishes, every bracket match
whose two sides are now known is sent to the judge (those known at the same moment in one
engine call) while the other candidates keep generating. The bracket is the seeded one of
`critic_loop.tournament`, and each match's coin is keyed by its bracket slot, so the result
is the one the round-by-round schedule reaches; only the timing differs.

A candidate counts as an original as soon as it finishes unless an identical earlier one
has already finished. If an identical earlier candidate finishes later, the matches played
on that guess are replayed with the right sides and reported as `discarded` (their tokens
are counted); this only costs anything when the samples repeat each other. Answer-aware
merging never runs here: its entrants and vote counts need every candidate finished, so
`best_of_n` plays it round by round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from critic_loop.engine import (
    Completion,
    Engine,
    EngineError,
    GenerationRequest,
    GenerationResult,
    TokenLogprob,
)
from critic_loop.entrants import Draw, normalise
from critic_loop.match import MatchResult
from critic_loop.pairwise import Pairing, PairJudge
from critic_loop.tournament import (
    Bracket,
    BracketMatch,
    KnockoutResult,
    MatchKey,
    Ref,
    settle,
)

logger = logging.getLogger(__name__)

_PENDING: Any = object()
"""A bracket side whose holder is not known yet."""


async def play_pipelined(engine: Engine, request: GenerationRequest, bracket: Bracket,
                         judge: PairJudge) -> tuple[GenerationResult, KnockoutResult]:
    """Stream the candidates of `request` and play `bracket` as they finish."""
    return await _Pipeline(engine, request, bracket, judge).run()


class _Pipeline:
    """The state of one pipelined run: candidates so far and matches played."""

    def __init__(self, engine: Engine, request: GenerationRequest, bracket: Bracket,
                 judge: PairJudge) -> None:
        self.engine, self.request, self.bracket, self.judge = engine, request, bracket, judge
        n = request.n
        self.parts: list[list[str]] = [[] for _ in range(n)]
        self.tokens = [0] * n
        self.logprobs: list[list[TokenLogprob]] = [[] for _ in range(n)]
        self.finish: list[str | None] = [None] * n
        self.normalised: list[str] = [""] * n
        self.first_finished: dict[str, int] = {}
        """Per normalised text, the lowest index that has finished with it."""
        self.prompt_tokens = 0
        self.played: dict[MatchKey, MatchResult] = {}
        self.launched: set[MatchKey] = set()
        self.events: asyncio.Queue[BaseException | None] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> tuple[GenerationResult, KnockoutResult]:
        streaming = asyncio.create_task(self._consume())
        try:
            while True:
                error = await self.events.get()
                if error is not None:
                    raise error
                if self._advance() is not _PENDING:
                    break
            await streaming  # every candidate has finished; let the stream close itself
        finally:
            pending = [t for t in (*self.tasks, streaming) if not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return self._result(), self._knockout()

    # -- events -------------------------------------------------------------------------
    async def _consume(self) -> None:
        try:
            async for delta in self.engine.stream(self.request):
                i = delta.index
                self.parts[i].append(delta.text)
                self.tokens[i] += delta.completion_tokens
                self.prompt_tokens = max(self.prompt_tokens, delta.prompt_tokens)
                if delta.logprobs:
                    self.logprobs[i].extend(delta.logprobs)
                if delta.finish_reason is not None:
                    self.finish[i] = delta.finish_reason
                    text = self.normalised[i] = normalise("".join(self.parts[i]))
                    self.first_finished[text] = min(self.first_finished.get(text, i), i)
                    self.events.put_nowait(None)
            if None in self.finish:
                raise EngineError(f"stream {self.request.request_id} ended before "
                                   "every candidate finished")
        except asyncio.CancelledError:
            self.events.put_nowait(EngineError("the candidate stream was cancelled"))
            raise
        except Exception as error:  # surfaced by run()
            self.events.put_nowait(error)

    async def _judge(self, batch: Sequence[tuple[MatchKey, Pairing]]) -> None:
        try:
            results = await self.judge.play([p for _, p in batch])
            for (key, _), result in zip(batch, results, strict=True):
                self.played[key] = result
            self.events.put_nowait(None)
        except asyncio.CancelledError:  # run() must not wait for an event that never comes
            self.events.put_nowait(EngineError("a judge call was cancelled"))
            raise
        except Exception as error:
            self.events.put_nowait(error)

    # -- the bracket as far as it is known -----------------------------------------------
    def _leaf(self, c: int) -> Any:
        if self.finish[c] is None:
            return _PENDING
        return None if self.first_finished[self.normalised[c]] < c else c

    def _advance(self) -> Any:
        """Launch every match whose sides are known; return the winner or _PENDING."""
        holders: dict[Ref, Any] = {(0, c): self._leaf(c) for c in range(self.bracket.size)}
        ready: list[tuple[MatchKey, Pairing]] = []
        for match in (m for matches in self.bracket.rounds for m in matches):
            holders[match.ref] = self._holder(match, holders, ready)
        if ready:
            logger.debug("%s: judging %d matches while generating",
                         self.request.request_id, len(ready))
            task = asyncio.create_task(self._judge(ready))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return holders[self.bracket.final]

    def _holder(self, match: BracketMatch, holders: dict[Ref, Any],
                ready: list[tuple[MatchKey, Pairing]]) -> Any:
        a, b = (holders[side] for side in match.sides)
        if a is _PENDING or b is _PENDING:
            return _PENDING
        if a is None or b is None:
            return b if a is None else a
        key = (match.ref, a, b)
        if key in self.played:
            return self.played[key].winner
        if key not in self.launched:
            self.launched.add(key)
            texts = ["".join(self.parts[a]), "".join(self.parts[b])]
            ready.append((key, Pairing(a, b, texts[0], texts[1], match.key)))
        return _PENDING

    # -- the outcome ---------------------------------------------------------------------
    def _result(self) -> GenerationResult:
        completions = tuple(
            Completion(i, "".join(self.parts[i]), self.tokens[i], self.finish[i] or "abort",
                       logprobs=tuple(self.logprobs[i]) if self.logprobs[i] else None)
            for i in range(self.request.n))
        return GenerationResult(self.request.request_id, self.prompt_tokens, completions)

    def _knockout(self) -> KnockoutResult:
        return settle(self.bracket, Draw.of_texts(["".join(p) for p in self.parts]),
                      self.played)
