"""The strategies `eval policy` compares, as the requests they send and how each is scored.

Every question gets one request per `Run`: greedy (temperature 0), one sample, one n=N
sampling request (majority vote and oracle pass@N are both read from its candidates, so
they are paired on the same samples), and one self-critic request per judge mode, N and
K (with `return_trace`, so the same response also yields that run's own candidates).
Answers are read and graded by `critic_loop.answers`, the extractor the server uses.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from critic_loop.answers import extract_answer, grade
from critic_loop.code.grader import CodeGrader
from evaluation.client import ChatReply
from evaluation.code_tasks import CODE_STOP
from evaluation.dataset import Question

STRATEGIES = ("greedy", "sample", "majority", "pass@N", "self-critic-fast", "self-critic-reason",
              "self-critic-fast-answer", "self-critic-reason-answer")
"""What `--strategies` accepts. `-answer`: self-critic with answer-aware merging
(`merge: "answer"`). `majority` and `pass@N` come from the same sampling request."""
DEFAULT_STRATEGIES = ("greedy", "sample", "majority", "pass@N", "self-critic-fast",
                      "self-critic-reason")


@dataclass(frozen=True)
class CodeScoring:
    """How code answers are scored: the grader (sandbox and pool), and whether candidates
    are grouped by their behaviour on the prompt's examples for the majority vote (else
    code has no majority: its answers do not group by text)."""

    grader: CodeGrader
    group_by_behaviour: bool = False


MAJORITY_NOT_APPLICABLE = ("not applicable to code: answers do not group by text "
                           "(--exec-grouping groups them by behaviour on the prompt's examples)")


class Unsupported(Exception):
    """The endpoint answered, but not with what this strategy needs (e.g. a peer server
    that ignores `self_critic`)."""


@dataclass(frozen=True)
class Run:
    """One request per question. `kind` is greedy, sample, sampling or self-critic."""

    kind: str
    n: int = 1
    judge: str | None = None
    k: int | None = None
    merge: str | None = None

    @property
    def name(self) -> str:
        """The strategy's name: 'greedy', 'sampling', 'self-critic-fast-answer', ..."""
        if self.kind != "self-critic":
            return self.kind
        return f"self-critic-{self.judge}" + (f"-{self.merge}" if self.merge else "")

    @property
    def key(self) -> str:
        """Unique per run: name with N and K, e.g. 'self-critic-fast@4k2'."""
        if self.kind in ("greedy", "sample"):
            return self.kind
        return f"{self.name}@{self.n}" + (f"k{self.k}" if self.k else "")


@dataclass(frozen=True)
class RequestSettings:
    """What every request shares: model, budgets, sampling temperature and seeds."""

    model: str
    max_tokens: int = 64
    temperature: float = 0.7
    judge_max_tokens: int = 256
    seed: int = 0
    request_seeds: bool = True
    """Send a per-question seed so sampling and self-critic draw the same candidates."""
    template: str = "{question}"

    def __post_init__(self) -> None:
        if self.max_tokens < 1 or self.judge_max_tokens < 1:
            raise ValueError("max_tokens and judge_max_tokens must be >= 1")
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if "{question}" not in self.template:
            raise ValueError("the prompt template must contain {question}")


@dataclass(frozen=True)
class Outcome:
    """One run on one question: whether its selection was right, its candidates, cost."""

    question_id: str
    run: str
    category: str | None = None
    correct: bool | None = None
    """The selection (greedy/sample: the answer; sampling: the majority vote;
    self-critic: the winner) graded; None when the request failed."""
    candidates_correct: tuple[bool, ...] = ()
    majority_correct: bool | None = None
    answers: tuple[str | None, ...] = ()
    """The extracted answer of each candidate (greedy/sample: of the one answer); code:
    its behaviour group with --exec-grouping, else None."""
    results: tuple[str, ...] = ()
    """Code: each candidate's test result ('passed', 'failed: ...', 'timed out')."""
    texts: tuple[str, ...] = ()
    selected: int | None = None
    tokens: int = 0
    seconds: float = 0.0
    judge_calls: int | None = None
    error: str | None = None
    skipped: bool = False
    """Not sent: the strategy had already been found unavailable at this endpoint."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pass_at_n(self) -> bool | None:
        return any(self.candidates_correct) if self.candidates_correct else None


def plan_runs(strategies: Sequence[str], ns: Sequence[int], ks: Sequence[int]) -> list[Run]:
    """The runs the chosen strategies need, one per (strategy, N, K)."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {', '.join(unknown)}; allowed: "
                         f"{', '.join(STRATEGIES)}")
    if not ns or any(n < 1 for n in ns) or not ks or any(k < 1 for k in ks):
        raise ValueError("--n and --k take positive integers")
    runs: list[Run] = [Run(s) for s in ("greedy", "sample") if s in strategies]
    if "majority" in strategies or "pass@N" in strategies:
        runs += [Run("sampling", n) for n in ns]
    for strategy in strategies:
        if strategy.startswith("self-critic-"):
            judge, _, merge = strategy.removeprefix("self-critic-").partition("-")
            runs += [Run("self-critic", n, judge, k, merge or None) for n in ns for k in ks]
    return runs


def request_body(run: Run, question: Question, settings: RequestSettings) -> dict[str, Any]:
    """The chat completion request `run` sends for `question`."""
    body: dict[str, Any] = {
        "model": settings.model, "max_tokens": settings.max_tokens,
        "messages": [{"role": "user",
                      "content": settings.template.replace("{question}", question.question)}],
        "temperature": 0.0 if run.kind == "greedy" else settings.temperature}
    if question.code is not None:
        body["stop"] = list(CODE_STOP)
    if run.kind != "greedy" and settings.request_seeds:
        body["seed"] = question_seed(settings.seed, question.id)
    if run.kind == "sampling":
        body["n"] = run.n
    if run.kind == "self-critic":
        options: dict[str, Any] = {"candidates": run.n, "judge": run.judge,
                                   "comparisons": run.k, "return_trace": True}
        if run.judge == "reason":
            options["judge_max_tokens"] = settings.judge_max_tokens
        if run.merge:
            options["merge"] = run.merge
            options["answer_format"] = question.vote_format
            if question.answer_pattern:
                options["answer_pattern"] = question.answer_pattern
        body["self_critic"] = options
    return body


def question_seed(seed: int, question_id: str) -> int:
    """One seed per (run seed, question): every sampled run of a question shares it, so
    the server draws the same candidates for sampling and for self-critic."""
    digest = hashlib.sha256(f"{seed}:{question_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def score_reply(run: Run, question: Question, reply: ChatReply,
                code: CodeScoring | None = None) -> Outcome:
    """Grade a successful reply; `Unsupported` when it lacks what the run needs. Code
    questions need `code`, and block while their programs run (call off the event loop)."""
    if question.code is not None and code is None:
        raise ValueError(f"{question.id} is a code problem: scoring it needs a CodeScoring")
    texts = reply.texts
    if not texts:
        raise Unsupported("the response has no choices")
    common = {"question_id": question.id, "run": run.key, "category": question.category,
              "tokens": reply.tokens, "seconds": reply.seconds}
    if run.kind in ("greedy", "sample"):
        right, results = _graded(question, texts[:1], code)
        return Outcome(**common, correct=right[0], candidates_correct=right,
                       answers=(None if question.code else _answer(question, texts[0]),),
                       results=results, texts=(texts[0],), selected=0)
    if run.kind == "sampling":
        if len(texts) != run.n:
            raise Unsupported(f"asked for n={run.n} choices, got {len(texts)}")
        return _scored_candidates(question, texts, common, selected=None, code=code)
    report = reply.body.get("self_critic")
    if not isinstance(report, dict):
        raise Unsupported("the response carries no `self_critic` report: this endpoint does "
                          "not run self-critic (an OpenAI-compatible peer ignores the field)")
    candidates = _trace_texts(report)
    if candidates is None:
        raise Unsupported("the `self_critic` report has no trace.candidates")
    outcome = _scored_candidates(question, candidates, common, selected=texts[0], code=code)
    extra = {k: report[k] for k in ("rounds", "consistency", "invalid_votes", "entrants",
                                    "judge_calls_saved") if k in report}
    return Outcome(**{**outcome.__dict__, "judge_calls": report.get("judge_calls"),
                      "extra": extra})


def majority_index(answers: Sequence[str | None]) -> int:
    """The first candidate holding the most frequent extracted answer; ties go to the
    answer that occurs first, and with no answer at all, to candidate 0.

    >>> majority_index(["3", None, "4", "4", "3"]), majority_index([None, None])
    (0, 0)
    >>> majority_index([None, "7", "5", "5"])
    2
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return 0
    top = max(counts.values())
    return next(i for i, a in enumerate(answers) if a is not None and counts[a] == top)


def _scored_candidates(question: Question, candidates: Sequence[str], common: dict[str, Any],
                       selected: str | None, code: CodeScoring | None = None) -> Outcome:
    """Grade every candidate and the majority vote; `selected` is the run's own pick
    (the self-critic winner), or None to select by majority (the sampling run). Code
    without behaviour grouping has no vote: the sampling run then selects nothing."""
    correct, results = _graded(question, candidates, code)
    if question.code is not None and code is not None:
        answers = _code_answers(question, candidates, code)
        votes = code.group_by_behaviour
    else:
        answers, votes = tuple(_answer(question, text) for text in candidates), True
    vote = majority_index(answers)
    if selected is None:
        index: int | None = vote if votes else None
        right: bool | None = correct[vote] if votes else None
    else:
        index = candidates.index(selected) if selected in candidates else None
        right = correct[index] if index is not None else _graded(question, [selected], code)[0][0]
    return Outcome(**common, correct=right, candidates_correct=correct,
                   majority_correct=correct[vote] if votes else None, answers=answers,
                   results=results, texts=tuple(candidates), selected=index)


def _code_answers(question: Question, candidates: Sequence[str], code: CodeScoring
                  ) -> tuple[str | None, ...]:
    task = question.code
    if not code.group_by_behaviour or task is None:
        return (None,) * len(candidates)
    return code.grader.vote_keys(task.prompt, candidates, task.entry_point,
                                 examples_text=question.question)


def _graded(question: Question, texts: Sequence[str], code: CodeScoring | None
            ) -> tuple[tuple[bool, ...], tuple[str, ...]]:
    """Whether each text is right, and (code) each one's test result."""
    if question.code is None or code is None:
        return tuple(_grade(question, text) for text in texts), ()
    graded = [code.grader.grade(text, question.code) for text in texts]
    return tuple(g.passed for g in graded), tuple(g.result for g in graded)


def _trace_texts(report: dict[str, Any]) -> list[str] | None:
    trace = report.get("trace")
    candidates = trace.get("candidates") if isinstance(trace, dict) else None
    if not isinstance(candidates, list) or not candidates:
        return None
    ordered = sorted(candidates, key=lambda c: c.get("index", 0))
    return [c.get("text") or "" for c in ordered]


def _grade(question: Question, text: str) -> bool:
    return grade(text, question.answer, question.grader, pattern=question.answer_pattern)


def _answer(question: Question, text: str) -> str | None:
    return extract_answer(text, question.vote_format, question.answer_pattern)
