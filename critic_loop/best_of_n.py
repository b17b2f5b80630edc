"""Best-of-N with the model as its own judge: sample N candidates, select the best, rank.

`best_of_n` is what a chat completion with `self_critic` runs: one engine request with
n=N for the candidates (two submitted together with `include_greedy`: the greedy decode and
N−1 samples), then the selection strategy `config.select` names (`critic_loop.selection`;
by default the knockout of `critic_loop.tournament`), and the candidates come back in rank
order with a report of what it cost. With `merge="answer"` the knockout is over distinct
answers (`critic_loop.entrants`) once every candidate has finished. With `adaptive`,
candidates stop once their answer is settled (`critic_loop.adaptive`) and only the finished
ones are ranked.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

from critic_loop.adaptive import AdaptiveSample, sample_adaptively
from critic_loop.config import SelfCriticConfig
from critic_loop.engine import (
    Completion,
    Engine,
    EngineError,
    GenerationRequest,
    GenerationResult,
    Message,
    SamplingOptions,
)
from critic_loop.images import images_of
from critic_loop.pairwise import PairJudge
from critic_loop.report import SelfCriticReport, TokenUsage
from critic_loop.selection.base import AsyncGroupBy, GroupBy, Pool, Selection
from critic_loop.selection.knockout import knockout_selection
from critic_loop.selection.registry import get_strategy, groups_answers, select
from critic_loop.selection.signals import TOP_LOGPROBS, candidate_signals
from critic_loop.tournament import Bracket, draw_seed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BestOfNResult:
    """The candidates in tournament rank order (winner first) and the run's report."""

    ranked: tuple[Completion, ...]
    """Each keeps its sampling `index`, text, finish reason, token count and logprobs."""
    report: SelfCriticReport

    @property
    def winner(self) -> Completion:
        return self.ranked[0]

    @property
    def usage(self) -> TokenUsage:
        """Every token spent, candidates and judge: the response's `usage`."""
        return self.report.usage


async def best_of_n(engine: Engine, prompt: str, question: str | Sequence[Message],
                    sampling: SamplingOptions, config: SelfCriticConfig,
                    request_id: str, prompt_ids: tuple[int, ...] | None = None,
                    *, group_by: GroupBy | None = None,
                    group_async: AsyncGroupBy | None = None) -> BestOfNResult:
    """Sample `config.candidates` answers to `prompt` and rank them by `config.select`.

    `prompt` is the rendered chat prompt (`prompt_ids` its tokens, when the engine's
    `render_prompt` made them); `question` (the messages, images included) is
    what the judge reads. Engine requests are named `{request_id}-cand` (and
    `{request_id}-greedy`, candidate 0, with `include_greedy`; with `adaptive`, one per
    candidate: `{request_id}-cand{i}`) and
    `{request_id}-{match}-j{k}` (`-x` for a tie-break judgment; a knockout's match is
    `r{round}-m{match}`, a league's `l-{a}-{b}`, a hybrid's `h-final`); cancelling the
    awaiting task cancels them. A strategy that reads confidence (or a trace) has the
    candidates sampled with top-k logprobs; the candidates come back with only the
    logprobs `sampling` asked for. `group_by` groups the candidates into answers for
    the strategies that group (instead of extracting answers); `group_async` does the
    same with keys that are awaited once every candidate has finished, before the
    selection, and only when the strategy groups (`groups_answers`).
    """
    seed = draw_seed(config.seed)
    config, notes = _schedule(config)
    strategy = get_strategy(config.select)
    judge = PairJudge(engine, question, config, request_id=request_id, seed=seed)
    images = images_of(question)  # the candidates see the images the judge will
    wants_signals = strategy.needs_confidence or config.return_trace
    candidate_sampling = (replace(sampling, logprobs=max(sampling.logprobs or 0, TOP_LOGPROBS))
                          if wants_signals else sampling)
    requests = _candidate_requests(request_id, prompt, candidate_sampling, config, images,
                                   prompt_ids)
    selection: Selection
    adaptive: AdaptiveSample | None = None
    if config.schedule == "pipelined":
        from critic_loop.pipeline import play_pipelined

        result, knockout = await play_pipelined(
            engine, requests[0], Bracket.build(config.candidates, seed), judge)
        completions = _check_candidates(result, config.candidates)
        signals = tuple(candidate_signals(c.logprobs) for c in completions)
        selection = knockout_selection(knockout)
    else:
        if config.adaptive != "off":  # the finished candidates only, renumbered 0..m-1
            adaptive = await sample_adaptively(engine, requests[0], config)
            result = adaptive.result
        else:
            result = _joined(await engine.generate(requests))
        completions = _check_candidates(result, len(result.completions) if adaptive
                                        else config.candidates)
        signals = tuple(candidate_signals(c.logprobs) for c in completions)
        if group_async is not None and groups_answers(config):
            group_by = _fixed_keys(tuple(await group_async(completions)))
        selection = await select(Pool(completions, signals, group_by), judge, config)
    completions = tuple(_as_asked(c, sampling.logprobs) for c in completions)
    usage = (adaptive.usage if adaptive  # stopped candidates' tokens too
             else TokenUsage(result.prompt_tokens, result.completion_tokens))
    report = SelfCriticReport(config, selection.played, usage, completions, notes,
                              images=len(images), selection=selection.details,
                              signals=signals, adaptive=adaptive.report if adaptive else None)
    logger.debug("%s: %s chose %d of %d (%d entrants) after %d judge calls", request_id,
                 config.select, selection.winner, config.candidates,
                 len(selection.played.entrants), selection.played.judge_calls)
    return BestOfNResult(tuple(completions[i] for i in selection.ranking), report)


def _fixed_keys(keys: tuple[Hashable, ...]) -> GroupBy:
    """A `GroupBy` answering keys computed before the selection."""
    return lambda _completions: keys


def _schedule(config: SelfCriticConfig) -> tuple[SelfCriticConfig, tuple[str, ...]]:
    """The config with the schedule that can run: only a knockout of texts over one
    candidate request can be pipelined; every other run needs all candidates finished."""
    if config.schedule != "pipelined":
        return config, ()
    rounds = replace(config, schedule="rounds")
    if config.adaptive != "off":
        return rounds, ("adaptive sampling ranks the candidates once they are settled, so "
                        "the bracket ran as 'rounds' instead of 'pipelined'",)
    if config.select != "knockout":
        return rounds, ()  # a schedule is a knockout's notion: nothing asked was changed
    if config.merge == "answer":
        # Entrants and their vote counts exist only once every candidate has finished.
        return rounds, ("merge 'answer' needs every candidate finished, so the bracket ran "
                        "as 'rounds' instead of 'pipelined'",)
    if config.include_greedy:
        return rounds, ("include_greedy samples the greedy candidate in a request of its "
                        "own, so the bracket ran as 'rounds' instead of 'pipelined'",)
    return config, ()


def _candidate_requests(request_id: str, prompt: str, sampling: SamplingOptions,
                        config: SelfCriticConfig, images: tuple[object, ...],
                        prompt_ids: tuple[int, ...] | None) -> list[GenerationRequest]:
    """The candidates' engine requests, submitted together so the engine batches them:
    with `include_greedy` the greedy decode (temperature 0, the rest as asked) first."""
    requests = []
    sampled = config.candidates
    if config.include_greedy:
        greedy = replace(sampling, temperature=0.0)
        requests.append(GenerationRequest(f"{request_id}-greedy", prompt, greedy, n=1,
                                          images=images, prompt_ids=prompt_ids))
        sampled -= 1
    if sampled:
        requests.append(GenerationRequest(f"{request_id}-cand", prompt, sampling, n=sampled,
                                          images=images, prompt_ids=prompt_ids))
    return requests


def _joined(results: Sequence[GenerationResult]) -> GenerationResult:
    """The candidate requests' results as one, indices renumbered in request order (the
    greedy candidate, when asked, is index 0)."""
    if len(results) == 1:
        return results[0]
    completions, offset = [], 0
    for result in results:
        ordered = sorted(result.completions, key=lambda c: c.index)
        completions.extend(replace(c, index=offset + i) for i, c in enumerate(ordered))
        offset += len(ordered)
    return GenerationResult(results[-1].request_id, sum(r.prompt_tokens for r in results),
                            tuple(completions), sum(r.cached_tokens for r in results))


def _as_asked(completion: Completion, top: int | None) -> Completion:
    """The completion with the logprobs the client asked for: none, or `top` alternatives."""
    if completion.logprobs is None or (top is not None and all(
            len(t.top) <= top for t in completion.logprobs)):
        return completion
    if top is None:
        return replace(completion, logprobs=None)
    return replace(completion, logprobs=tuple(replace(t, top=t.top[:top])
                                              for t in completion.logprobs))


def _check_candidates(result: GenerationResult, n: int) -> tuple[Completion, ...]:
    completions = tuple(sorted(result.completions, key=lambda c: c.index))
    if [c.index for c in completions] != list(range(n)):
        raise EngineError(f"asked for {n} candidates, the engine returned indices "
                          f"{[c.index for c in completions]}")
    return completions

