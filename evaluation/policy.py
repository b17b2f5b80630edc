"""`eval policy` end to end: load questions, reach an endpoint, run, score, write outputs.

The endpoint is `--url` (any OpenAI-compatible server) or, without it, `selfcritic serve`
started on `--model` for the duration of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from critic_loop.code.grader import CodeGrader
from critic_loop.code.sandbox import Limits, Sandbox
from critic_loop.config import ALIAS_SUFFIXES
from evaluation.candidate_recorder import CandidateRecorder
from evaluation.client import ChatClient, EndpointError
from evaluation.code_tasks import CODE_MAX_TOKENS
from evaluation.dataset import Fields, Question, load_questions
from evaluation.local_server import local_server
from evaluation.plot import plot_accuracy
from evaluation.report import Row, build_rows, write_report
from evaluation.runner import RunLog, Runner
from evaluation.strategies import (
    DEFAULT_STRATEGIES,
    CodeScoring,
    RequestSettings,
    Run,
    plan_runs,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyEvalConfig:
    """Everything one `eval policy` run needs."""

    data: Path
    output: Path
    url: str | None = None
    model: str | None = None
    """With `url`: the model name to request (None: the endpoint's first). Without:
    'default' or a model directory to serve."""
    api_key: str | None = None
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    ns: tuple[int, ...] = (4, 8)
    ks: tuple[int, ...] = (2,)
    max_tokens: int | None = None
    """None: 64, or CODE_MAX_TOKENS when the questions are code problems."""
    temperature: float = 0.7
    judge_max_tokens: int = 256
    seed: int = 0
    request_seeds: bool = True
    template: str = "{question}"
    limit: int | None = None
    concurrency: int = 4
    timeout_s: float = 900.0
    fields: Fields = field(default_factory=Fields)
    serve_args: tuple[str, ...] = ()
    progress: bool | None = None
    exec_grouping: bool = False
    """Code: group candidates by behaviour on the prompt's examples for majority@N."""
    allow_unsandboxed_exec: bool = False
    exec_timeout_s: float = 10.0
    """Wall limit of one graded program (CPU limit alike)."""
    exec_workers: int = 2
    """Programs graded at once."""
    save_candidates: Path | None = None
    """Also write the greedy and largest-N sampling replies, with logprobs, as a
    candidates file for `eval select` (evaluation/candidates.py)."""
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    """Tests: an httpx transport (e.g. MockTransport) standing in for the endpoint."""

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")
        if self.concurrency < 1:
            raise ValueError(f"--concurrency must be >= 1, got {self.concurrency}")
        if self.exec_workers < 1 or self.exec_timeout_s <= 0:
            raise ValueError("--exec-workers must be >= 1 and --exec-timeout-s > 0")
        if self.save_candidates and not {"majority", "pass@N"} & set(self.strategies):
            raise ValueError("--save-candidates keeps the sampling request's candidates: "
                             "add majority or pass@N to --strategies")


@dataclass(frozen=True)
class PolicyEvalResult:
    """The rows, the files written and the runs the endpoint could not serve."""

    rows: list[Row]
    paths: dict[str, Path]
    unavailable: dict[str, str]

    @property
    def any_scored(self) -> bool:
        return any(r.accuracy is not None for r in self.rows)


def evaluate_policy(config: PolicyEvalConfig) -> PolicyEvalResult:
    """Run every strategy on every question and write report.json, table.md,
    outcomes.jsonl and accuracy_vs_n.png under `config.output`."""
    questions = load_questions(config.data, config.fields, config.limit)
    runs = plan_runs(config.strategies, config.ns, config.ks)
    has_code = any(q.code is not None for q in questions)
    if config.max_tokens is None:
        config = dataclasses.replace(config, max_tokens=CODE_MAX_TOKENS if has_code else 64)
    _settings(config, model="")  # bad settings fail here, before a server is started
    logger.info("%d questions × %d runs = %d requests", len(questions), len(runs),
                len(questions) * len(runs))
    with contextlib.ExitStack() as stack:
        code = (stack.enter_context(code_scoring(
            config.exec_timeout_s, config.allow_unsandboxed_exec, config.exec_workers,
            config.exec_grouping)) if has_code else None)
        if config.url:
            endpoint = config.url
            model, log = asyncio.run(_evaluate(config, config.url, questions, runs, code))
        else:
            served = config.model or "default"
            endpoint = f"selfcritic serve --model {served} (in-process mode)"
            with local_server(served, config.output / "server.log", seed=config.seed,
                              max_candidates=max(config.ns), extra_args=config.serve_args
                              ) as url:
                model, log = asyncio.run(_evaluate(config, url, questions, runs, code))
    rows = build_rows(runs, log.outcomes, log.unavailable)
    meta = _meta(config, endpoint, model, len(questions), log)
    paths = write_report(config.output, rows, log.outcomes, meta)
    title = f"{model} on {config.data.name} ({len(questions)} questions)"
    png = plot_accuracy(rows, config.output / "accuracy_vs_n.png", title)
    if png:
        paths["plot"] = png
    return PolicyEvalResult(rows, paths, log.unavailable)


@contextlib.contextmanager
def code_scoring(timeout_s: float, allow_unsandboxed: bool, workers: int,
                 group_by_behaviour: bool) -> Iterator[CodeScoring]:
    """The sandbox and grading pool for code questions, probed before any request (shared
    by `eval policy` and `eval select`)."""
    limits = Limits(wall_s=timeout_s, cpu_s=max(1, math.ceil(timeout_s)))
    sandbox = Sandbox(limits, allow_unsandboxed=allow_unsandboxed, max_parallel=workers)
    logger.info("code answers are graded under %s", sandbox.isolation)
    with CodeGrader(sandbox) as grader:
        yield CodeScoring(grader, group_by_behaviour=group_by_behaviour)


async def _evaluate(config: PolicyEvalConfig, url: str, questions: list[Question],
                    runs: list[Run], code: CodeScoring | None = None) -> tuple[str, RunLog]:
    async with ChatClient(url, config.api_key, config.concurrency, config.timeout_s,
                          transport=config.transport) as client:
        model = config.model if config.url and config.model else await endpoint_model(client)
        recorder = (CandidateRecorder(config.save_candidates, max(config.ns))
                    if config.save_candidates else None)
        runner = Runner(client, _settings(config, model), config.concurrency, config.progress,
                        code, recorder)
        log = await runner.run(questions, runs)
        if recorder is not None and recorder.write(questions):
            logger.info("wrote candidates: %s", config.save_candidates)
    return model, log


def _settings(config: PolicyEvalConfig, model: str) -> RequestSettings:
    return RequestSettings(
        model=model, max_tokens=config.max_tokens or 64, temperature=config.temperature,
        judge_max_tokens=config.judge_max_tokens, seed=config.seed,
        request_seeds=config.request_seeds, template=config.template)


async def endpoint_model(client: ChatClient) -> str:
    """The endpoint's first model (its `:self-critic` and `:judge` aliases skipped)."""
    try:
        names = await client.model_names()
    except (EndpointError, httpx.HTTPError) as exc:
        raise EndpointError(0, f"cannot list the endpoint's models ({exc}); pass --model") from exc
    plain = [n for n in names if not n.endswith(ALIAS_SUFFIXES)] or names
    if not plain:
        raise EndpointError(0, "the endpoint lists no models; pass --model")
    return plain[0]


def _meta(config: PolicyEvalConfig, endpoint: str, model: str, questions: int,
          log: RunLog) -> dict[str, Any]:
    settings = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                if f.name not in ("transport", "api_key", "fields", "progress",
                                  "save_candidates")}
    settings["fields"] = {k: v for k, v in asdict(config.fields).items() if v is not None}
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "endpoint": endpoint, "model": model, "data": str(config.data),
            "questions": questions, "wall_s": round(log.wall_s, 3),
            "host": platform.node(), "settings": _jsonable(settings),
            "unavailable": log.unavailable}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value
