"""`eval calibrate`: measure the selection strategies on held-out data and store the best
as the model's `:self-critic` default (`critic_loop.selection.calibration`).

The data must be disjoint from every test set, or the default would be tuned on what it
is later measured on: the shipped held-out sets and HumanEval are refused by name. The
candidates are a given file or drawn first by `eval policy --save-candidates`; every
strategy then runs through `eval select` on the same pools, with and without the greedy
candidate, and the most accurate wins (ties: fewer judge calls, then the order given).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from critic_loop.runtime.model_store import resolve_model
from critic_loop.selection.calibration import Calibration, write_calibration
from evaluation.dataset import Fields
from evaluation.local_server import local_server
from evaluation.policy import PolicyEvalConfig, evaluate_policy
from evaluation.select_eval import SelectEvalConfig, SelectEvalResult, evaluate_selection
from evaluation.select_report import StrategyRow, pool_figures
from evaluation.selectors import DEFAULT_SELECTORS, Selector, SelectSettings, parse_selectors

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
TEST_SETS = (REPO / "data" / "tasks" / "heldout.jsonl", REPO / "data" / "demo" / "heldout.jsonl")
"""Shipped sets the figures in the README are measured on; `humaneval` is one too."""


@dataclass(frozen=True)
class CalibrateConfig:
    """Everything one calibration needs."""

    model: str
    """'default' or a model directory: what is measured and where the result is written."""
    data: Path
    output: Path
    url: str | None = None
    """A server already serving `model`; None: serve it for the run."""
    served_model: str | None = None
    candidates: Path | None = None
    """None: draw greedy and N samples per question first."""
    tokenizer: str | None = None
    """None: the model directory."""
    api_key: str | None = None
    selectors: tuple[Selector, ...] = field(
        default_factory=lambda: parse_selectors(",".join(DEFAULT_SELECTORS)))
    settings: tuple[SelectSettings, ...] = (SelectSettings(), SelectSettings(include_greedy=True))
    """One `eval select` pass per entry (they differ in include_greedy)."""
    template: str = "{question}"
    fields: Fields = field(default_factory=Fields)
    limit: int | None = None
    concurrency: int = 2
    timeout_s: float = 900.0
    max_tokens: int = 64
    temperature: float = 0.7
    dry_run: bool = False
    serve_args: tuple[str, ...] = ()
    progress: bool | None = None
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    engine_tokenizer: Any = field(default=None, repr=False)
    """Tests: stand-ins for the endpoint and the tokenizer."""

    def __post_init__(self) -> None:
        if not self.settings:
            raise ValueError("calibrate needs at least one pool setting")
        if len({s.n for s in self.settings}) != 1:
            raise ValueError("every pass of one calibration uses the same N")


@dataclass(frozen=True)
class CalibrationResult:
    calibration: Calibration
    written: Path | None
    """The metadata file, or None for a dry run."""
    passes: tuple[SelectEvalResult, ...]

    def summary(self) -> str:
        c, f = self.calibration, self.calibration.figures
        where = f"wrote {self.written}" if self.written else "dry run: nothing written"
        return (f"best: {f['strategy']} (select={c.select}, judge={c.judge}, merge={c.merge}, "
                f"include_greedy={str(c.include_greedy).lower()}, judge_weight={c.judge_weight}"
                f"): accuracy {f['accuracy']:.1%} on {f['questions']} questions "
                f"(greedy {_pct(f['greedy_accuracy'])}, pass@{f['n']} {_pct(f['pass_at_n'])})"
                f"\n{where}")


def calibrate(config: CalibrateConfig) -> CalibrationResult:
    """Measure, choose, and (unless a dry run) write the model's calibration."""
    check_not_a_test_set(config.data)
    model_dir = resolve_model(config.model).path
    config.output.mkdir(parents=True, exist_ok=True)
    with _endpoint(config) as url:
        candidates = config.candidates or _sample(config, url)
        passes = tuple(evaluate_selection(_select_config(config, url, candidates, s))
                       for s in config.settings)
    calibration = choose(passes, config)
    (config.output / "calibration.json").write_text(
        json.dumps(calibration.to_dict(), indent=2) + "\n")
    written = None if config.dry_run else write_calibration(model_dir, calibration)
    return CalibrationResult(calibration, written, passes)


def check_not_a_test_set(data: Path) -> None:
    """ValueError when `data` is a shipped test set (or HumanEval)."""
    if str(data).lower() == "humaneval" or data.resolve() in TEST_SETS:
        raise ValueError(f"{data} is a test set: calibrate on data disjoint from every test "
                         "set (for the arithmetic tasks, data/tasks/train.jsonl)")


def choose(passes: tuple[SelectEvalResult, ...], config: CalibrateConfig) -> Calibration:
    """The most accurate strategy over every pass; ties go to fewer judge calls, then to
    the earlier pass and strategy."""
    entries = [(row, settings, result) for settings, result in zip(config.settings, passes,
                                                                   strict=True)
               for row in result.rows if row.accuracy is not None]
    if not entries:
        raise ValueError("no strategy was scored: nothing to calibrate")
    row, settings, result = min(entries, key=lambda e: (
        -e[0].correct / e[0].questions, e[0].judge_calls_per_question or 0.0,
        entries.index(e)))
    selector = next(s for s in config.selectors if s.name == row.strategy)
    return Calibration(
        select=selector.select, include_greedy=settings.include_greedy,
        judge_weight=settings.judge_weight, judge=selector.judge,
        merge=selector.merge or "text", figures=_figures(row, settings, result, passes, config))


def _figures(row: StrategyRow, settings: SelectSettings, result: SelectEvalResult,
             passes: tuple[SelectEvalResult, ...], config: CalibrateConfig) -> dict[str, Any]:
    """The winner's figures, where they were measured, and every entry's accuracy."""
    pool = pool_figures(result.results)
    return {"strategy": row.strategy, "n": settings.n, "comparisons": settings.comparisons,
            "questions": row.questions, "accuracy": row.accuracy,
            "ci95": list(row.ci95) if row.ci95 else None,
            "pass_at_n": pool.pass_at_n, "greedy_accuracy": pool.greedy_accuracy,
            "mean_sample_accuracy": pool.mean_sample_accuracy,
            "selection_efficiency": row.selection_efficiency,
            "judge_calls_per_question": row.judge_calls_per_question,
            "judge_tokens_per_question": row.judge_tokens_per_question,
            "order_agreement": row.order_agreement, "p_comp": row.p_comp,
            "data": str(config.data), "data_sha256": _sha256(config.data),
            "measured": result.meta.get("created"), "model": result.meta.get("model"),
            "ranking": [{"strategy": r.strategy, "include_greedy": s.include_greedy,
                         "accuracy": r.accuracy,
                         "judge_calls_per_question": r.judge_calls_per_question}
                        for s, p in zip(config.settings, passes, strict=True) for r in p.rows]}


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@contextlib.contextmanager
def _endpoint(config: CalibrateConfig) -> Iterator[str]:
    if config.url:
        yield config.url
        return
    n = config.settings[0].n
    with local_server(config.model, config.output / "server.log", seed=0,
                      max_candidates=max(16, n), extra_args=config.serve_args) as url:
        yield url


def _sample(config: CalibrateConfig, url: str) -> Path:
    """Greedy and N samples per question through `eval policy`, kept as candidates."""
    path = config.output / "candidates.jsonl"
    evaluate_policy(PolicyEvalConfig(
        data=config.data, output=config.output / "sample", url=url,
        model=config.served_model, api_key=config.api_key, strategies=("greedy", "majority"),
        ns=(config.settings[0].n,), max_tokens=config.max_tokens,
        temperature=config.temperature, seed=config.settings[0].seed,
        template=config.template, limit=config.limit, concurrency=config.concurrency,
        timeout_s=config.timeout_s, fields=config.fields, progress=config.progress,
        save_candidates=path, transport=config.transport))
    if not path.is_file():
        raise RuntimeError(f"sampling returned no candidates (see {config.output / 'sample'})")
    return path


def _select_config(config: CalibrateConfig, url: str, candidates: Path,
                   settings: SelectSettings) -> SelectEvalConfig:
    name = "with-greedy" if settings.include_greedy else "samples-only"
    return SelectEvalConfig(
        candidates=candidates, data=config.data, output=config.output / name, url=url,
        model=config.served_model, tokenizer=config.tokenizer or _tokenizer_dir(config),
        api_key=config.api_key, selectors=config.selectors, settings=settings,
        template=config.template, fields=config.fields, limit=config.limit,
        concurrency=config.concurrency, timeout_s=config.timeout_s, progress=config.progress,
        transport=config.transport, engine_tokenizer=config.engine_tokenizer)


def _tokenizer_dir(config: CalibrateConfig) -> str | None:
    return None if config.engine_tokenizer is not None else str(
        resolve_model(config.model).path)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
