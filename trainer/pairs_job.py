"""One pair-mining run from its settings: questions, a sampler, the code sandbox, the files.

Shared by `selfcritic data pairs` and the `pairs:` section of a loop recipe
(`selfcritic train`), so both mine the same way. Questions are training questions only:
the seeded arithmetic tasks' train split, the seeded code tasks' train split, and any
JSONL file that is not a shipped test set; HumanEval is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic_loop.answers import CODE_GRADER
from evaluation.dataset import Question, load_questions
from trainer.pairs import CodeGrade, MiningConfig, MiningResult, mine_pairs, write_mining
from trainer.samplers import Budget, EndpointSampler, LocalSampler

logger = logging.getLogger(__name__)

ENGINES = ("transformers", "vllm")


@dataclass(frozen=True)
class PairsJob:
    """Everything one mining run needs (each field is a `pairs:` key of a loop recipe)."""

    output: str = "runs/pairs"
    model: str = "default"
    """Without `url`: a built-in name or model directory, sampled locally. With `url`: the
    model name to request (empty: the endpoint's first)."""
    url: str | None = None
    engine: str = "transformers"
    """Without `url`: 'transformers' (in-process) or 'vllm' (`selfcritic serve` for the run)."""
    questions: tuple[str, ...] = ()
    """JSONL question files (training questions only)."""
    tasks: int = 200
    """Seeded arithmetic-style questions from `evaluation.tasks`' train split."""
    code_tasks: int = 0
    """Seeded code problems from `evaluation.code_task_gen`'s train split."""
    task_seed: int = 0
    samples: int = 8
    temperature: float = 0.7
    """`eval policy`'s sampling temperature: the candidates best-of-N judges at test time."""
    max_tokens: int = 64
    code_max_tokens: int = 384
    pairs_per_question: int = 2
    heldout_share: float = 0.25
    seed: int = 0
    concurrency: int = 4
    batch_questions: int = 16
    exec_timeout_s: float = 10.0
    allow_unsandboxed_exec: bool = False

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.tasks < 0 or self.code_tasks < 0:
            raise ValueError("tasks and code_tasks must be >= 0")
        if not 0 < self.temperature <= 2:
            raise ValueError(f"temperature must be in (0, 2], got {self.temperature}")
        MiningConfig(self.samples, self.pairs_per_question, self.heldout_share, self.seed)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PairsJob:
        """A job from a recipe's `pairs:` mapping; ValueError names an unknown key."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown pairs field {unknown[0]!r}; allowed: "
                             f"{', '.join(sorted(names))}")
        if isinstance(values.get("questions"), (str, list)):
            listed = values["questions"]
            values = {**values, "questions": tuple([listed] if isinstance(listed, str) else listed)}
        return cls(**values)


def training_questions(job: PairsJob) -> list[Question]:
    """The job's questions: files, then seeded tasks, then seeded code problems."""
    from evaluation.calibrate import check_not_a_test_set
    from evaluation.code_task_gen import code_questions
    from evaluation.tasks import generate_tasks

    questions: list[Question] = []
    for path in job.questions:
        check_not_a_test_set(Path(path))
        questions.extend(load_questions(path))
    questions.extend(Question(t.id, t.question, t.answer, t.grader, t.category)
                     for t in generate_tasks(job.task_seed, "train", job.tasks))
    if job.code_tasks:
        questions.extend(code_questions(job.task_seed, "train", job.code_tasks))
    humaneval = [q.id for q in questions if q.id.startswith("HumanEval/")]
    if humaneval:
        raise ValueError(f"{humaneval[0]} is a HumanEval problem: HumanEval is a test set, "
                         "never trained on")
    if not questions:
        raise ValueError("no questions: give tasks, code_tasks or questions")
    return questions


def run_pairs_job(job: PairsJob) -> tuple[MiningResult, dict[str, Path]]:
    """Mine pairs as `job` says; write them under `job.output`."""
    questions = training_questions(job)
    config = MiningConfig(job.samples, job.pairs_per_question, job.heldout_share, job.seed,
                          model=job.model)
    budget = Budget(job.max_tokens, job.code_max_tokens)
    has_code = any(q.grader == CODE_GRADER for q in questions)
    logger.info("mining pairs: %d questions × %d samples from %s", len(questions), job.samples,
                job.url or f"{job.model} ({job.engine})")
    with contextlib.ExitStack() as stack:
        code_grade = stack.enter_context(_code_grade(job)) if has_code else None
        result = asyncio.run(_mine(job, questions, config, budget, code_grade, stack))
    paths = write_mining(result, Path(job.output), config,
                         {"job": {k: v for k, v in dataclasses.asdict(job).items()}})
    logger.info("pairs: %s", result.summary())
    return result, paths


async def _mine(job: PairsJob, questions: list[Question], config: MiningConfig, budget: Budget,
                code_grade: CodeGrade | None, stack: contextlib.ExitStack) -> MiningResult:
    if job.url is None and job.engine == "transformers":
        from critic_loop.runtime.model_store import resolve_model
        from trainer.generate import LocalGenerator

        generator = LocalGenerator.from_dir(str(resolve_model(job.model).path))
        sampler: Any = LocalSampler(generator, temperature=job.temperature, budget=budget,
                                    seed=job.seed)
        return await mine_pairs(questions, sampler, config, code_grade,
                                batch=job.batch_questions)
    from evaluation.client import ChatClient
    from evaluation.policy import endpoint_model

    url = job.url or stack.enter_context(_served(job))
    async with ChatClient(url, concurrency=job.concurrency) as client:
        model = job.model if job.url and job.model else await endpoint_model(client)
        sampler = EndpointSampler(client, model, temperature=job.temperature, budget=budget,
                                  seed=job.seed)
        return await mine_pairs(questions, sampler, config, code_grade,
                                batch=job.batch_questions)


@contextlib.contextmanager
def _served(job: PairsJob) -> Iterator[str]:
    from evaluation.local_server import local_server

    log = Path(job.output) / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with local_server(job.model, log, seed=job.seed, max_candidates=job.samples) as url:
        yield url


@contextlib.contextmanager
def _code_grade(job: PairsJob) -> Iterator[CodeGrade]:
    from critic_loop.code.grader import CodeGrader
    from critic_loop.code.sandbox import Limits, Sandbox

    limits = Limits(wall_s=job.exec_timeout_s, cpu_s=max(1, math.ceil(job.exec_timeout_s)))
    sandbox = Sandbox(limits, allow_unsandboxed=job.allow_unsandboxed_exec, max_parallel=2)
    logger.info("code answers are graded under %s", sandbox.isolation)
    with CodeGrader(sandbox) as grader:
        def code_grade(text: str, question: Question) -> tuple[bool, str]:
            assert question.code is not None  # only code questions reach here
            graded = grader.grade(text, question.code)
            return graded.passed, graded.result

        yield code_grade
