"""Pairwise matches against the engine: K judgments per pair in alternating order.

A match asks the judge K times, alternating which candidate is "Response 1" so that a
judge's position bias cancels; `critic_loop.match` turns the judgments into a verdict.
`PairJudge.play` sends every judgment of every match it is given to the engine in one
`generate` call, so the engine batches them; a reason-mode split that may take an extra
judgment costs one more call for all such matches together.

A reason judgment always ends in a verdict: one whose text names no response (it stopped
after its thinking, ran out of budget, or boxed something else) is continued from its own
reasoning closed and a box opened (`verdict_prefix`) for ONE token restricted to "1"/"2",
the fast judge's decode, and the digit's probabilities are its verdict. So only a prompt
that cannot fit or an aborted engine request is an invalid vote. This two-step ending was
chosen over constraining the whole judgment with a grammar: it runs on every engine that
can decode a restricted token (vLLM, an upstream server), leaves the reasoning as the
model writes it, still ends in a verdict when the budget cuts the reasoning off, and costs
one more prefill (mostly prefix-cached) only for the judgments that need it.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from critic_loop.config import SelfCriticConfig
from critic_loop.engine import (
    JUDGE_ADAPTER,
    Engine,
    GenerationRequest,
    GenerationResult,
    Message,
    Prompt,
    PromptTooLongError,
    SamplingOptions,
)
from critic_loop.images import images_of
from critic_loop.judge_prompt import VERDICT_CHOICES, JudgeMode, judge_messages, verdict_prefix
from critic_loop.match import (
    PROMPT_TOO_LONG,
    Coin,
    Judgment,
    MatchResult,
    decide,
    is_split,
    reasoning_of,
)
from critic_loop.prompts import continue_prompt, render_judge_prompts
from critic_loop.verdict import parse_verdict, probabilities_from_logprobs

logger = logging.getLogger(__name__)

VERDICT_SAMPLING = SamplingOptions(max_tokens=1, temperature=0.0, choices=VERDICT_CHOICES)
"""One greedy token restricted to "1"/"2": a fast judgment, and a reason judgment's end."""


@dataclass(frozen=True)
class Pairing:
    """Two distinct candidates to judge. `key` names the match ("r1-m0") in request ids
    and seeds its coin, so its result does not depend on when it is played."""

    a: int
    b: int
    text_a: str
    text_b: str
    key: str


class PairJudge:
    """Plays matches for one question with one engine: builds, batches and decides."""

    def __init__(self, engine: Engine, question: str | Sequence[Message],
                 config: SelfCriticConfig, *,
                 request_id: str, seed: int) -> None:
        self.engine = engine
        self.question = question
        self.config = config
        self.mode = config.mode
        self.comparisons = config.comparisons
        self.extra_allowed = config.extra_judgment
        self.request_id = request_id
        self.seed = seed
        self._used_ids: set[str] = set()
        self._prompts: dict[tuple[str, str], tuple[Prompt | None, tuple[Any, ...]]] = {}
        """Judge prompts by the texts shown as Response 1 and 2 (None: too long to send)."""

    async def play(self, pairings: Sequence[Pairing]) -> list[MatchResult]:
        """Judge every pairing: one engine call for all K judgments of all of them, and
        (reason mode, only when a match splits) one more call for the extra judgments."""
        if not pairings:
            return []
        prefixes = [self._prefix(p.key) for p in pairings]
        starts = [self._first_order(p) for p in pairings]
        orders = [[start if k % 2 == 0 else start[::-1] for k in range(self.comparisons)]
                  for start in starts]
        jobs = [(p, order, f"{prefix}-j{k}", k)
                for p, prefix, match_orders in zip(pairings, prefixes, orders, strict=True)
                for k, order in enumerate(match_orders)]
        judged = await self._judge_regular(jobs)
        regular = [judged[i * self.comparisons:(i + 1) * self.comparisons]
                   for i in range(len(pairings))]
        coins = [Coin(f"{self.seed}:{p.key}") for p in pairings]

        tied = [i for i, p in enumerate(pairings)
                if self.extra_allowed and is_split((p.a, p.b), regular[i])]
        extra_jobs = [(pairings[i], self._extra_order(starts[i], coins[i]),
                       f"{prefixes[i]}-x", self.comparisons) for i in tied]
        extras = dict(zip(tied, await self._judge(extra_jobs), strict=True)) if tied else {}
        by_probability = self.mode is JudgeMode.FAST
        return [decide((p.a, p.b), regular[i], extras.get(i), by_probability=by_probability,
                       coin=coins[i], key=p.key, calibrate=self.config.calibrate_position,
                       prior=self.config.position_prior) for i, p in enumerate(pairings)]

    # -- building and sending judgments ---------------------------------------------------
    def _prefix(self, key: str) -> str:
        prefix, replay = f"{self.request_id}-{key}", 1
        while prefix in self._used_ids:  # a pipelined replay of the same bracket slot
            prefix, replay = f"{self.request_id}-{key}-s{replay}", replay + 1
        self._used_ids.add(prefix)
        return prefix

    def _first_order(self, p: Pairing) -> tuple[int, int]:
        """Which candidate is shown first in judgment 0. Even K shows both orders equally
        often; with odd K one order gets one judgment more, so a seeded coin of its own
        (keyed by the match) picks it, and neither candidate gains from position bias."""
        if self.comparisons % 2 == 0 or Coin(f"{self.seed}:{p.key}:order").heads():
            return (p.a, p.b)
        return (p.b, p.a)

    def _extra_order(self, start: tuple[int, int], coin: Coin) -> tuple[int, int]:
        if self.comparisons % 2 == 1:  # K odd: continuing the alternation balances orders
            return start[::-1]
        return start if coin.heads() else start[::-1]

    def _sampling(self, key: str, k: int) -> SamplingOptions:
        return judge_sampling(self.config, key, k)

    async def _judge_regular(self, jobs: Sequence[tuple[Pairing, tuple[int, int], str, int]]
                             ) -> list[Judgment]:
        """The K regular judgments of each match. A greedy judge says the same to the same
        prompt, so only the first two (one per order) are generated and judgment k repeats
        judgment k mod 2: the votes and probabilities are what K generations would give."""
        if not self.config.greedy_judge or self.comparisons <= 2:
            return await self._judge(jobs)
        answers = iter(await self._judge([job for job in jobs if job[3] < 2]))
        judged: list[Judgment] = []
        for _, _, rid, k in jobs:  # grouped by match, k = 0..K-1
            judged.append(next(answers) if k < 2 else replace(
                judged[len(judged) - k + k % 2], request_id=rid, prompt_tokens=0,
                completion_tokens=0, repeated=True))
        return judged

    async def _judge(self, jobs: Sequence[tuple[Pairing, tuple[int, int], str, int]]
                     ) -> list[Judgment]:
        shown = [(p.text_a, p.text_b) if order[0] == p.a else (p.text_b, p.text_a)
                 for p, order, _, _ in jobs]
        await self._render(shown)
        return await judge_jobs(self.engine, self.config, [
            (rid, *self._prompts[texts], self._sampling(p.key, k))
            for (p, _, rid, k), texts in zip(jobs, shown, strict=True)],
            [order for _, order, _, _ in jobs])

    async def _render(self, shown: Sequence[tuple[str, str]]) -> None:
        """Render and tokenise each judge prompt not seen before in this request, off the
        event loop: the K judgments of a match repeat two prompts, each tokenised once."""
        new = list(dict.fromkeys(t for t in shown if t not in self._prompts))
        conversations = [judge_messages(self.question, a, b, self.mode) for a, b in new]
        prompts = await render_judge_prompts(self.engine, conversations)
        for texts, messages, prompt in zip(new, conversations, prompts, strict=True):
            self._prompts[texts] = (prompt, images_of(messages))


def judge_sampling(config: SelfCriticConfig, key: str, k: int) -> SamplingOptions:
    """Judgment `k` of match `key`: one constrained digit (fast), or a reasoned verdict
    whose sample is seeded per judgment when the run is seeded."""
    if config.mode is JudgeMode.FAST:
        return VERDICT_SAMPLING
    seed = None
    if config.seed is not None:  # reproducible judge samples for a seeded run
        seed = zlib.crc32(f"{config.seed}:{key}:{k}".encode()) & 0x7FFFFFFF
    return SamplingOptions(max_tokens=config.judge_max_tokens,
                           temperature=config.judge_temperature, seed=seed)


def read_judgment(mode: JudgeMode, order: tuple[int, int], rid: str,
                  result: GenerationResult | None) -> Judgment:
    """The judgment a generation holds (None: its prompt was too long to send). `order`
    names the candidates shown as Response 1 and 2; the verdict names a candidate."""
    if result is None or not result.completions:
        return Judgment(order, None, None, "", None, request_id=rid,
                        finish_reason=PROMPT_TOO_LONG if result is None else "abort")
    completion = result.completions[0]
    probabilities = None
    if mode is JudgeMode.FAST and completion.choice_logprobs is not None:
        probabilities = probabilities_from_logprobs(completion.choice_logprobs,
                                                    VERDICT_CHOICES)
    if probabilities is not None:
        first, second = probabilities
        said = None if first == second else (1 if first > second else 2)
    else:
        said = parse_verdict(completion.text)
    return Judgment(
        order=order,
        verdict=None if said is None else order[said - 1],
        reasoning=reasoning_of(completion.text),
        text=completion.text,
        probabilities=probabilities,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        finish_reason=completion.finish_reason,
        request_id=rid,
    )


async def judge_given_prompts(engine: Engine, conversations: Sequence[Sequence[Message]],
                              config: SelfCriticConfig, request_ids: Sequence[str]
                              ) -> list[Judgment]:
    """Judge conversations that already are whole judge prompts (a dataset's own wording,
    both responses inside it): once each, as given, so a verdict of 1 or 2 names the
    response shown first or second. Same sampling and verdict reading as a match."""
    prompts = await render_judge_prompts(engine, conversations)
    return await judge_jobs(engine, config, [
        (rid, prompt, images_of(messages), judge_sampling(config, rid, 0))
        for rid, messages, prompt in zip(request_ids, conversations, prompts, strict=True)],
        [(1, 2)] * len(request_ids))


JudgeJob = tuple[str, Prompt | None, tuple[Any, ...], SamplingOptions]
"""One judgment to generate: request id, rendered prompt (None: too long), images, sampling."""


async def judge_jobs(engine: Engine, config: SelfCriticConfig, jobs: Sequence[JudgeJob],
                     orders: Sequence[tuple[int, int]]) -> list[Judgment]:
    """Generate and read each judgment (`orders`: the candidates shown as Response 1 and
    2); in reason mode, those without a verdict are then ended in one (`force_verdicts`)."""
    results = await generate_judgments(engine, judgment_tokens(config), jobs)
    judgments = [read_judgment(config.mode, order, rid, result)
                 for (rid, *_), order, result in zip(jobs, orders, results, strict=True)]
    if config.mode is JudgeMode.REASON:
        judgments = await force_verdicts(engine, jobs, judgments)
    return judgments


async def force_verdicts(engine: Engine, jobs: Sequence[JudgeJob],
                         judgments: Sequence[Judgment]) -> list[Judgment]:
    """Each reason judgment of `jobs` that was generated but names no response, continued
    from its reasoning with the box opened (`verdict_prefix`) for one token restricted to
    "1"/"2"; all of them in one engine call, named `{request id}-v`. The digit's
    probabilities become the judgment's; its tokens are added to the judgment's."""
    todo = [i for i, j in enumerate(judgments)
            if j.verdict is None and j.sent and j.finish_reason != "abort"
            and jobs[i][1] is not None]
    if not todo:
        return list(judgments)

    def extend() -> list[Prompt | None]:
        extended: list[Prompt | None] = []
        for i in todo:
            prompt = jobs[i][1]
            try:
                extended.append(None if prompt is None else continue_prompt(
                    engine, prompt, verdict_prefix(judgments[i].text)))
            except PromptTooLongError:
                extended.append(None)
        return extended

    prompts = await asyncio.to_thread(extend)
    results = await generate_judgments(engine, 1, [
        (f"{jobs[i][0]}-v", prompt, jobs[i][2], VERDICT_SAMPLING)
        for i, prompt in zip(todo, prompts, strict=True)])
    forced = list(judgments)
    for i, result in zip(todo, results, strict=True):
        judged = judgments[i]
        digit = read_judgment(JudgeMode.FAST, judged.order, judged.request_id, result)
        if digit.verdict is None:
            logger.warning("judgment %s: no verdict even when forced; invalid vote",
                           judged.request_id)
            continue
        forced[i] = replace(judged, verdict=digit.verdict, probabilities=digit.probabilities,
                            prompt_tokens=judged.prompt_tokens + digit.prompt_tokens,
                            completion_tokens=judged.completion_tokens
                            + digit.completion_tokens, forced=True)
    return forced


def judgment_tokens(config: SelfCriticConfig) -> int:
    """A judgment's completion budget: one digit (fast), or the reasoning budget."""
    return 1 if config.mode is JudgeMode.FAST else config.judge_max_tokens


async def generate_judgments(engine: Engine, budget: int, jobs: Sequence[JudgeJob]
                             ) -> list[GenerationResult | None]:
    """Each job (request id, prompt, images, sampling) whose prompt and `budget` fit the
    context, sent in one engine call so the engine batches them; None for the others
    (their votes are invalid), in the order of `jobs`."""
    fits = [prompt is not None and prompt.tokens + budget <= engine.max_model_len
            for _, prompt, _, _ in jobs]
    requests = [GenerationRequest(rid, prompt.text, sampling, images=images,
                                  prompt_ids=prompt.token_ids, adapter=JUDGE_ADAPTER)
                for (rid, prompt, images, sampling), ok in zip(jobs, fits, strict=True)
                if ok and prompt is not None]
    for (rid, *_), ok in zip(jobs, fits, strict=True):
        if not ok:
            logger.warning("judge prompt %s does not fit the context; invalid vote", rid)
    results = iter(await engine.generate(requests) if requests else [])
    return [next(results) if ok else None for ok in fits]
