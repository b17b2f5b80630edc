"""`eval select` end to end: sampled candidates in, every strategy's pick graded, report out.

The judge runs on the served model through `critic_loop.runtime.engines.upstream` (the engine
`selfcritic serve --upstream` uses), so judge prompts are rendered with the model's own
tokenizer and sent as token ids, exactly as in the server; deterministic judgments are
generated once and replayed to every strategy that asks them (`evaluation.judge_cache`).
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from critic_loop.engine import Engine, EngineError
from critic_loop.runtime.engines.upstream import UpstreamConfig, UpstreamEngine
from evaluation.candidate_grader import CandidateGrader, grader_for
from evaluation.candidates import CandidatesError, CandidateSet, load_candidates
from evaluation.client import ChatClient
from evaluation.dataset import Fields, Question, load_questions
from evaluation.judge_cache import ReplayingEngine
from evaluation.policy import endpoint_model
from evaluation.select_report import StrategyRow, strategy_rows, write_select_report
from evaluation.select_run import QuestionPicks, select_question
from evaluation.selectors import DEFAULT_SELECTORS, Selector, SelectSettings, parse_selectors
from evaluation.strategies import CodeScoring, RequestSettings, Run, request_body

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectEvalConfig:
    """Everything one `eval select` run needs."""

    candidates: Path
    data: Path
    output: Path
    url: str
    model: str | None = None
    """The served model's name (None: the endpoint's first, its `:self-critic` alias
    skipped)."""
    tokenizer: str | None = None
    """The served model's local directory (tokenizer and chat template); None: the
    directory the endpoint reports as its model's root."""
    api_key: str | None = None
    selectors: tuple[Selector, ...] = field(
        default_factory=lambda: parse_selectors(",".join(DEFAULT_SELECTORS)))
    settings: SelectSettings = field(default_factory=SelectSettings)
    template: str = "{question}"
    """The user message the candidates answered, `{question}` replaced (as in eval policy)."""
    fields: Fields = field(default_factory=Fields)
    limit: int | None = None
    concurrency: int = 2
    """Questions judged at once."""
    timeout_s: float = 900.0
    max_model_len: int = 2048
    """Used when the endpoint does not report its context length."""
    graders: Mapping[str, CandidateGrader] = field(default_factory=dict)
    """Graders by name beside `critic_loop.answers`' text graders (e.g. 'code')."""
    code: CodeScoring | None = None
    """Code questions: the sandboxed grader (registered as 'code' unless `graders` has
    one) and whether grouping strategies group candidates by behaviour on the prompt's
    examples (`critic_loop.code.behaviour`) instead of by extracted answer."""
    progress: bool | None = None
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    """Tests: a transport standing in for the endpoint."""
    engine_tokenizer: Any = field(default=None, repr=False)
    """Tests: a tokenizer object instead of loading `tokenizer`."""

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if self.concurrency < 1:
            raise ValueError(f"--concurrency must be >= 1, got {self.concurrency}")
        if "{question}" not in self.template:
            raise ValueError("the prompt template must contain {question}")


@dataclass(frozen=True)
class SelectEvalResult:
    rows: list[StrategyRow]
    results: list[QuestionPicks]
    paths: dict[str, Path]
    meta: dict[str, Any]


def evaluate_selection(config: SelectEvalConfig) -> SelectEvalResult:
    """Run every strategy on every question that has candidates; write the report."""
    questions = load_questions(config.data, config.fields, config.limit)
    candidates = load_candidates(config.candidates)
    paired = _paired(questions, candidates, config)
    start = time.monotonic()
    model, results, sent = asyncio.run(_evaluate(config, paired))
    names = [s.name for s in config.selectors]
    rows = strategy_rows(results, names)
    meta = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "endpoint": config.url, "model": model, "data": str(config.data),
            "candidates": str(config.candidates), "questions": len(results),
            "wall_s": round(time.monotonic() - start, 3), "host": platform.node(),
            "judge_requests_sent": sent, "strategies": names,
            "settings": {**config.settings.__dict__, "template": config.template}}
    paths = write_select_report(config.output, results, rows, meta)
    return SelectEvalResult(rows, results, paths, meta)


def _paired(questions: Sequence[Question], candidates: Mapping[str, CandidateSet],
            config: SelectEvalConfig) -> list[tuple[Question, CandidateSet]]:
    """The questions that have candidates, each checked before any judge call: its grader
    exists and its row holds a whole pool."""
    paired = [(q, candidates[q.id]) for q in questions if q.id in candidates]
    missing = [q.id for q in questions if q.id not in candidates]
    if not paired:
        raise CandidatesError(f"{config.candidates}: no row matches a question of "
                              f"{config.data} (ids such as {questions[0].id!r}); the rows' "
                              "task_id (or id) must be the questions' id")
    if missing:
        logger.warning("%d of %d questions have no candidates and are left out (e.g. %s)",
                       len(missing), len(questions), ", ".join(missing[:3]))
    for question, found in paired:
        grader_for(question, _graders(config))
        found.pool(config.settings.n, config.settings.include_greedy)
    return paired


async def _evaluate(config: SelectEvalConfig, paired: Sequence[tuple[Question, CandidateSet]]
                    ) -> tuple[str, list[QuestionPicks], int]:
    model = config.model or await _first_model(config)
    upstream = await connect_judge(config, model)
    engine = ReplayingEngine(upstream)
    request = RequestSettings(model=model, template=config.template)
    try:
        results = await _run_all(engine, paired, config, request)
    finally:
        await engine.close()
    logger.info("judge requests: %d sent, %d replayed", engine.sent, engine.replayed)
    return model, results, engine.sent


async def _run_all(engine: Engine, paired: Sequence[tuple[Question, CandidateSet]],
                   config: SelectEvalConfig, request: RequestSettings) -> list[QuestionPicks]:
    results: list[QuestionPicks | None] = [None] * len(paired)
    queue = iter(enumerate(paired))
    with tqdm(total=len(paired), unit="q", desc="eval select",
              disable=None if config.progress is None else not config.progress) as bar:

        async def worker() -> None:
            for index, (question, found) in queue:
                messages = request_body(Run("greedy"), question, request)["messages"]
                results[index] = await select_question(
                    engine, question, messages, found, config.selectors, config.settings,
                    _graders(config), config.code)
                bar.update()

        await asyncio.gather(*(worker() for _ in range(min(config.concurrency, len(paired)))))
    return [r for r in results if r is not None]


def _graders(config: SelectEvalConfig) -> Mapping[str, CandidateGrader]:
    if config.code is None or "code" in config.graders:
        return config.graders
    grader = config.code.grader
    return {"code": lambda text, question: grader.grade(text, question.code).passed,
            **config.graders}


async def _first_model(config: SelectEvalConfig) -> str:
    async with ChatClient(config.url, config.api_key, 1, config.timeout_s,
                          transport=config.transport) as client:
        return await endpoint_model(client)


async def connect_judge(config: SelectEvalConfig, model: str) -> UpstreamEngine:
    """The upstream engine on `config.url`, serving `model` with its tokenizer."""
    upstream = UpstreamConfig(
        urls=(config.url,), api_keys=(config.api_key,) if config.api_key else (), model=model,
        tokenizer=config.tokenizer, max_model_len=config.max_model_len,
        request_timeout_s=config.timeout_s, connect_wait_s=10.0)
    transport = config.transport
    try:
        return await UpstreamEngine.connect(
            upstream, transport=(lambda _url: transport) if transport else None,
            tokenizer=config.engine_tokenizer)
    except EngineError as exc:
        if "tokenizer" in str(exc):
            raise EngineError(f"{exc}; for eval select pass --tokenizer DIR (the served "
                              "model's directory)") from exc
        raise
