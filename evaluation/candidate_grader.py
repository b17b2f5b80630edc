"""How `eval select` decides whether a candidate is right: one small interface, any grader.

A `CandidateGrader` is `grade(candidate_text, question) -> bool`. Text graders come from
`critic_loop.answers` by the question's `grader` name; graders that are not pure functions
of the text (the sandboxed `code` grader runs the program against the question's tests)
are passed in by name, and win over the text graders of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from critic_loop.answers import GRADERS, grade
from evaluation.dataset import Question


class CandidateGrader(Protocol):
    """Whether `candidate_text` answers `question` right. May block (it is called off the
    event loop)."""

    def __call__(self, candidate_text: str, question: Question) -> bool:
        ...


def text_grader(candidate_text: str, question: Question) -> bool:
    """The `critic_loop.answers` grader the question names, on its reference answer."""
    return grade(candidate_text, question.answer, question.grader,
                 pattern=question.answer_pattern)


def grader_for(question: Question, extra: Mapping[str, CandidateGrader] | None = None
               ) -> CandidateGrader:
    """The grader of `question`: `extra[question.grader]` if given, else the text grader;
    ValueError naming the allowed graders otherwise."""
    extra = extra or {}
    if question.grader in extra:
        return extra[question.grader]
    if question.grader in GRADERS:
        return text_grader
    allowed = ", ".join(sorted({*GRADERS, *extra}))
    raise ValueError(f"{question.id}: no grader {question.grader!r} here; allowed: {allowed}")
