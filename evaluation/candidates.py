"""Candidates sampled once, selected many times: the JSONL file `eval select` reads.

One row per question, `{"task_id": str, "greedy": C, "samples": [C, ...]}` (`id` may stand
for `task_id`, as the shipped task sets name their rows), where a candidate C is
`{"text": str, "finish_reason": str, "logprobs": [[token_logprob, [top_logprob, ...]], ...]}`:
each generated token's logprob and its top-k alternatives' logprobs (token texts are not
kept; `critic_loop.selection.signals` reads only the numbers). `logprobs` may be absent or
null; `greedy` may be null when a file has only samples.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic_loop.engine import Completion, TokenLogprob


class CandidatesError(ValueError):
    """A candidates file that cannot be read, or a row that is not a candidate set."""


@dataclass(frozen=True)
class CandidateSet:
    """One question's candidates: its greedy decode (None if the file has none) and samples."""

    question_id: str
    greedy: Completion | None
    samples: tuple[Completion, ...]

    def pool(self, n: int, include_greedy: bool) -> tuple[Completion, ...]:
        """The N candidates the server would select among: the first N samples, or with
        `include_greedy` (as `best_of_n` does) the greedy decode then the first N−1
        samples; indices renumbered 0..N−1."""
        if include_greedy:
            if self.greedy is None:
                raise CandidatesError(f"{self.question_id}: include_greedy needs a greedy "
                                      "candidate, and this row has none")
            chosen = (self.greedy, *self.samples[:n - 1])
        else:
            chosen = self.samples[:n]
        if len(chosen) < n:
            raise CandidatesError(f"{self.question_id}: a pool of {n} needs "
                                  f"{n - int(include_greedy)} samples, the row has "
                                  f"{len(self.samples)}")
        return tuple(Completion(i, c.text, c.completion_tokens, c.finish_reason, c.logprobs)
                     for i, c in enumerate(chosen))


def load_candidates(path: str | Path) -> dict[str, CandidateSet]:
    """Every row of the candidates file `path`, by question id."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CandidatesError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    sets: dict[str, CandidateSet] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
            found = candidate_set(row)
        except json.JSONDecodeError as exc:
            raise CandidatesError(f"{where}: not valid JSON: {exc.msg}") from None
        except CandidatesError as exc:
            raise CandidatesError(f"{where}: {exc}") from None
        if found.question_id in sets:
            raise CandidatesError(f"{where}: {found.question_id!r} appears twice")
        sets[found.question_id] = found
    if not sets:
        raise CandidatesError(f"{path}: no candidate rows")
    return sets


def candidate_set(row: Any) -> CandidateSet:
    """A parsed row (see the module docstring)."""
    if not isinstance(row, dict):
        raise CandidatesError(f"a row must be a JSON object, got {type(row).__name__}")
    question_id = row.get("task_id", row.get("id"))
    if isinstance(question_id, bool) or not isinstance(question_id, (str, int)):
        raise CandidatesError("field 'task_id' (or 'id') is missing or not a string")
    samples = row.get("samples")
    if not isinstance(samples, list):
        raise CandidatesError("field 'samples' must be a list of candidates")
    greedy = row.get("greedy")
    return CandidateSet(str(question_id),
                        None if greedy is None else completion_of(greedy, "greedy"),
                        tuple(completion_of(s, f"samples[{i}]") for i, s in enumerate(samples)))


def completion_of(record: Any, where: str) -> Completion:
    """A candidate record as the engine's `Completion` (index 0; `CandidateSet.pool`
    numbers them)."""
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise CandidatesError(f"{where}: a candidate needs a string 'text'")
    finish = record.get("finish_reason") or "stop"
    if not isinstance(finish, str):
        raise CandidatesError(f"{where}: 'finish_reason' must be a string")
    logprobs = _token_logprobs(record.get("logprobs"), where)
    tokens = len(logprobs) if logprobs else len(record["text"].split())
    return Completion(0, record["text"], tokens, finish, logprobs)


def _token_logprobs(value: Any, where: str) -> tuple[TokenLogprob, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise CandidatesError(f"{where}: 'logprobs' must be a list of [logprob, [top, ...]]")
    tokens = []
    for k, entry in enumerate(value):
        try:
            logprob, top = entry
            tokens.append(TokenLogprob("", _number(logprob),
                                       tuple(("", _number(t)) for t in top or ())))
        except (TypeError, ValueError):
            raise CandidatesError(f"{where}: logprobs[{k}] must be [logprob, [top, ...]], got "
                                  f"{json.dumps(entry)[:80]}") from None
    return tuple(tokens)


def _number(value: Any) -> float:
    """A logprob; null (a token the server gave no number for) as -inf, which the signals
    floor."""
    if value is None:
        return -math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(value)
    return float(value)


def record_of_choice(choice: Mapping[str, Any]) -> dict[str, Any]:
    """A candidate record from an OpenAI chat completion choice (its `logprobs.content`
    as the per-token numbers), as `eval policy --save-candidates` writes them."""
    content = ((choice.get("logprobs") or {}).get("content")) or None
    logprobs = None if content is None else [
        [t.get("logprob"), [a.get("logprob") for a in t.get("top_logprobs") or ()]]
        for t in content]
    return {"text": (choice.get("message") or {}).get("content") or "",
            "finish_reason": choice.get("finish_reason") or "stop", "logprobs": logprobs}


def candidate_row(question_id: str, greedy: Mapping[str, Any] | None,
                  samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One row of a candidates file from candidate records."""
    return {"task_id": question_id, "greedy": None if greedy is None else dict(greedy),
            "samples": [dict(s) for s in samples]}
