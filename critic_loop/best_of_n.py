"""Best-of-N with the model as its own judge: sample N candidates, knock them out, rank.

`best_of_n` is what a chat completion with `self_critic` runs: one engine request with
n=N for the candidates, then the knockout (`critic_loop.tournament`), and the candidates
come back in rank order with a report of what it cost. With `merge="answer"` the knockout
is over distinct answers (`critic_loop.entrants`) once every candidate has finished. With
`adaptive`, candidates stop once their answer is settled (`critic_loop.adaptive`) and only
the finished ones are ranked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
from critic_loop.entrants import Draw
from critic_loop.images import images_of
from critic_loop.pairwise import PairJudge
from critic_loop.report import SelfCriticReport, TokenUsage
from critic_loop.tournament import Bracket, KnockoutResult, draw_seed, play_rounds

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
                    request_id: str, prompt_ids: tuple[int, ...] | None = None
                    ) -> BestOfNResult:
    """Sample `config.candidates` answers to `prompt` and rank them by a knockout.

    `prompt` is the rendered chat prompt (`prompt_ids` its tokens, when the engine's
    `render_prompt` made them); `question` (the messages, images included) is
    what the judge reads. Engine requests are named `{request_id}-cand` (with `adaptive`,
    one per candidate: `{request_id}-cand{i}`) and
    `{request_id}-r{round}-m{match}-j{k}` (`-x` for a tie-break judgment); cancelling the
    awaiting task cancels them.
    """
    seed = draw_seed(config.seed)
    notes: tuple[str, ...] = ()
    if config.adaptive != "off" and config.schedule == "pipelined":
        config = replace(config, schedule="rounds")
        notes = ("adaptive sampling ranks the candidates once they are settled, so the "
                 "bracket ran as 'rounds' instead of 'pipelined'",)
    elif config.merge == "answer" and config.schedule == "pipelined":
        # Entrants and their vote counts exist only once every candidate has finished.
        config = replace(config, schedule="rounds")
        notes = ("merge 'answer' needs every candidate finished, so the bracket ran as "
                 "'rounds' instead of 'pipelined'",)
    judge = PairJudge(engine, question, config, request_id=request_id, seed=seed)
    images = images_of(question)  # the candidates see the images the judge will
    request = GenerationRequest(f"{request_id}-cand", prompt, sampling, n=config.candidates,
                                images=images, prompt_ids=prompt_ids)
    knockout: KnockoutResult
    adaptive: AdaptiveSample | None = None
    if config.schedule == "pipelined":
        from critic_loop.pipeline import play_pipelined

        result, knockout = await play_pipelined(
            engine, request, Bracket.build(config.candidates, seed), judge)
        completions = _check_candidates(result, config.candidates)
    else:
        if config.adaptive != "off":  # the finished candidates only, renumbered 0..m-1
            adaptive = await sample_adaptively(engine, request, config)
            result = adaptive.result
        else:
            [result] = await engine.generate([request])
        completions = _check_candidates(result, len(result.completions) if adaptive
                                        else config.candidates)
        texts = [c.text for c in completions]
        draw = (Draw.of_answers(completions, config.answer_format, config.answer_pattern)
                if config.merge == "answer" else Draw.of_texts(texts))
        knockout = await play_rounds(Bracket.build(len(draw.slots), seed), judge, texts, draw)
    usage = (adaptive.usage if adaptive  # stopped candidates' tokens too
             else TokenUsage(result.prompt_tokens, result.completion_tokens))
    report = SelfCriticReport(config, knockout, usage, completions, notes, images=len(images),
                              adaptive=adaptive.report if adaptive else None)
    logger.debug("%s: winner %d of %d (%d entrants) after %d judge calls", request_id,
                 knockout.winner, config.candidates, len(knockout.entrants),
                 knockout.judge_calls)
    return BestOfNResult(tuple(completions[i] for i in knockout.ranking), report)


def _check_candidates(result: GenerationResult, n: int) -> tuple[Completion, ...]:
    completions = tuple(sorted(result.completions, key=lambda c: c.index))
    if [c.index for c in completions] != list(range(n)):
        raise EngineError(f"asked for {n} candidates, the engine returned indices "
                          f"{[c.index for c in completions]}")
    return completions

