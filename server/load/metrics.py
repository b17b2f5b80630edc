"""Prometheus metrics named `selfcritic_*`, exposed at /metrics beside vLLM's own.

One `Metrics` object per app, in a registry of its own (no module-level collectors), so
two apps in one process count apart; /metrics exposes it together with the process-wide
registry where vLLM's engine keeps its metrics (`scrape`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from critic_loop.report import SelfCriticReport

_ADMISSION = {
    "limit": ("selfcritic_admission_limit", "Sequences admission lets in flight now: lowered "
              "on queueing delay, raised below it, at most max_inflight_sequences."),
    "in_flight_sequences": ("selfcritic_admission_inflight_sequences",
                            "Sequences of admitted requests running or queued."),
    "tokens_per_s": ("selfcritic_estimated_tokens_per_second", "Measured engine throughput "
                     "in charged tokens (budgets, prompts discounted) per second."),
    "backlog": ("selfcritic_admission_backlog_tokens",
                "Admitted work not yet drained, in charged tokens."),
    "queue_delay_s": ("selfcritic_engine_queue_delay_seconds", "The smallest engine "
                      "queueing delay of the last interval (lower bound)."),
}
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640)


@dataclass
class Metrics:
    """The product's metrics; names are part of the contract (DESIGN section 6)."""

    requests: Counter
    latency: Histogram
    in_flight: Gauge
    rejections: Counter
    candidates: Counter
    judge_calls: Counter
    judge_calls_saved: Counter
    invalid_verdicts: Counter
    matches: Counter
    order_agreement: Counter
    rounds: Counter
    tokens: Counter
    admission: dict[str, Gauge]
    """Admission's estimates by attribute of `server.load.capacity.Capacity`; see
    `bind_admission`."""
    registry: CollectorRegistry
    """This app's own registry, holding the collectors above."""

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """The metrics in `registry`, by default a new one."""
        registry = CollectorRegistry() if registry is None else registry

        def make(kind: type, name: str, doc: str, labels: tuple[str, ...] = (), **kw: object):
            return kind(name, doc, labels, registry=registry, **kw)

        return cls(
            requests=make(Counter, "selfcritic_requests", "HTTP requests by endpoint and status.",
                          ("endpoint", "status")),
            latency=make(Histogram, "selfcritic_request_latency_seconds",
                         "HTTP request latency by endpoint.", ("endpoint",),
                         buckets=_LATENCY_BUCKETS),
            in_flight=make(Gauge, "selfcritic_requests_in_flight",
                           "Requests being served now, by endpoint.", ("endpoint",)),
            rejections=make(Counter, "selfcritic_rejections",
                            "Requests refused before reaching the engine, by reason.",
                            ("reason",)),
            candidates=make(Counter, "selfcritic_candidates",
                            "Self-critic candidates generated."),
            judge_calls=make(Counter, "selfcritic_judge_calls",
                             "Judge generations, by judge mode.", ("mode",)),
            judge_calls_saved=make(Counter, "selfcritic_judge_calls_saved",
                                   "Judge calls answer-aware merging saved against "
                                   "identical-text merging, by judge mode.", ("mode",)),
            invalid_verdicts=make(Counter, "selfcritic_invalid_verdicts",
                                  "Judgments whose verdict could not be read, by mode.",
                                  ("mode",)),
            matches=make(Counter, "selfcritic_matches",
                         "Pairwise matches by outcome (consistent, split, invalid).",
                         ("outcome",)),
            order_agreement=make(
                Counter, "selfcritic_judge_order_agreement",
                "Matches judged in both orders whose sides' answers differ, by judge mode "
                "and result (agreed: both orders named the same candidate). agreed over "
                "all is the judge's order agreement, a proxy for p_comp.",
                ("mode", "result")),
            rounds=make(Counter, "selfcritic_tournament_rounds", "Knockout rounds played."),
            tokens=make(Counter, "selfcritic_tokens",
                        "Tokens by phase (candidate, judge) and kind (prompt, completion).",
                        ("phase", "kind")),
            admission={attr: make(Gauge, name, doc) for attr, (name, doc) in _ADMISSION.items()},
            registry=registry,
        )

    def scrape(self) -> _Scrape:
        """What /metrics exposes: these metrics, then the process-wide registry's (vLLM's)."""
        return _Scrape((self.registry, REGISTRY))

    def bind_admission(self, capacity: object) -> None:
        """Read each admission gauge from `capacity` at scrape time."""
        for attr, gauge in self.admission.items():
            gauge.set_function(lambda attr=attr: getattr(capacity, attr) or 0.0)

    def record_self_critic(self, report: SelfCriticReport) -> None:
        """Count one tournament (best-of-N or a critique)."""
        mode = report.config.mode.value
        # adaptive sampling ranks only its finished candidates; count every one it started
        self.candidates.inc(report.adaptive.started if report.adaptive
                            else len(report.candidates))
        self.judge_calls.labels(mode).inc(report.judge_calls)
        self.judge_calls_saved.labels(mode).inc(report.judge_calls_saved)
        self.invalid_verdicts.labels(mode).inc(report.invalid_votes)
        for outcome, count in report.matches.items():
            self.matches.labels(outcome).inc(count)
        agreement = report.order_agreement
        self.order_agreement.labels(mode, "agreed").inc(agreement.agreed)
        self.order_agreement.labels(mode, "disagreed").inc(agreement.judged - agreement.agreed)
        self.rounds.inc(report.rounds)
        phases = {"candidate": report.candidate_usage, "judge": report.judge_usage}
        for phase, usage in phases.items():
            self.tokens.labels(phase, "prompt").inc(usage.prompt_tokens)
            self.tokens.labels(phase, "completion").inc(usage.completion_tokens)

    def record_generation(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Count a plain completion's tokens (phase `candidate`)."""
        self.tokens.labels("candidate", "prompt").inc(prompt_tokens)
        self.tokens.labels("candidate", "completion").inc(completion_tokens)


@dataclass(frozen=True)
class _Scrape:
    """Several registries read as one (`generate_latest` only calls `collect`)."""

    registries: tuple[CollectorRegistry, ...]

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            yield from registry.collect()
