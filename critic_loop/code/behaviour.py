"""Execution-based grouping: what each candidate program does on the prompt's own examples.

Code answers do not group by text, but they do by behaviour: candidates that return the
same outputs on the prompt's example inputs are one group, and a candidate that
contradicts an output the prompt states is wrong whatever the rest says. Each candidate
runs once, in the sandbox, on every example input (a time budget per call), printing the
`repr` of each result or the exception's type.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from critic_loop.code.examples import Example, parse_examples, same_output
from critic_loop.code.extract import program_for
from critic_loop.code.sandbox import Limits, Sandbox

_RUNNER = """\
import json, signal, sys
MARK = {mark!r}
def _alarm(signum, frame):
    raise TimeoutError
signal.signal(signal.SIGALRM, _alarm)
namespace = {{"__name__": "solution"}}
try:
    exec(compile({program!r}, "solution.py", "exec"), namespace)
except BaseException as exc:
    print(MARK + json.dumps(["!load " + type(exc).__name__]))
    sys.exit(0)
outputs = []
for call in {calls!r}:
    signal.setitimer(signal.ITIMER_REAL, {per_call_s!r})
    try:
        output = repr(eval(call, namespace))[:{max_chars}]
    except BaseException as exc:
        output = "!" + type(exc).__name__
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    outputs.append(output)
print(MARK + json.dumps(outputs))
"""
_MARK = "\n@@selfcritic-outputs@@"
"""Opens the outputs line: a candidate's own prints may leave a line unfinished."""
MAX_OUTPUT_CHARS = 2000
"""Longer reprs are cut: two candidates equal on the first 2000 characters group together."""


@dataclass(frozen=True)
class Behaviour:
    """One candidate on the examples: its outputs, and how many stated outputs it breaks.

    An output is the `repr` of the result, `!ExceptionType` when the call raised,
    `!TimeoutError` past the per-call budget; a program that does not load has the single
    output `!load ExceptionType`, and one the sandbox stopped has `!<status>`.
    """

    signature: tuple[str, ...]
    contradictions: int


def behaviours(sandbox: Sandbox, prompt: str | None, answers: Sequence[str],
               entry_point: str | None = None, *, examples_text: str | None = None,
               per_call_s: float = 1.0, limits: Limits | None = None) -> list[Behaviour]:
    """How each of `answers` (model answers: the program is taken out of each, completing
    `prompt`) behaves on the examples that `examples_text` shows (default: the prompt; for
    a problem stated in prose, the question the model was asked). With no examples every
    signature is empty (one group)."""
    examples = parse_examples(examples_text or prompt or "", entry_point)
    if not examples:
        return [Behaviour((), 0) for _ in answers]
    programs = [program_for(answer, prompt, entry_point) for answer in answers]
    with ThreadPoolExecutor(max_workers=max(1, min(len(programs), 8))) as pool:
        signatures = list(pool.map(
            lambda program: _signature(sandbox, program, examples, per_call_s, limits),
            programs))
    return [Behaviour(sig, contradictions(examples, sig)) for sig in signatures]


def contradictions(examples: Sequence[Example], signature: Sequence[str]) -> int:
    """How many stated outputs `signature` gets wrong (a missing output counts as wrong).

    >>> contradictions([Example("f(1)", "2"), Example("f(2)"), Example("f(3)", "'x'")],
    ...                ("2", "5", '"x"'))
    0
    >>> contradictions([Example("f(1)", "2"), Example("f(3)", "4")], ("!load SyntaxError",))
    2
    """
    wrong = 0
    for i, example in enumerate(examples):
        if example.expected is None:
            continue
        if i >= len(signature) or not same_output(example.expected, signature[i]):
            wrong += 1
    return wrong


def group_ids(found: Sequence[Behaviour]) -> list[int]:
    """A group number per candidate: equal signatures share one, numbered by first
    appearance.

    >>> group_ids([Behaviour(("1",), 0), Behaviour(("2",), 1), Behaviour(("1",), 0)])
    [0, 1, 0]
    """
    numbers: dict[tuple[str, ...], int] = {}
    return [numbers.setdefault(b.signature, len(numbers)) for b in found]


def vote_keys(found: Sequence[Behaviour]) -> tuple[str | None, ...]:
    """A vote key per candidate, for a majority over behaviours: its signature (as JSON)
    when it contradicts the fewest stated outputs, None (no vote) otherwise, so that a
    candidate that contradicts the prompt ranks below every one that does not.

    >>> vote_keys([Behaviour(("1",), 1), Behaviour(("2",), 0), Behaviour(("2",), 0)])
    (None, '["2"]', '["2"]')
    """
    fewest = min((b.contradictions for b in found), default=0)
    return tuple(json.dumps(list(b.signature)) if b.contradictions == fewest else None
                 for b in found)


def _signature(sandbox: Sandbox, program: str, examples: Sequence[Example],
               per_call_s: float, limits: Limits | None) -> tuple[str, ...]:
    calls = [example.call for example in examples]
    script = _RUNNER.format(program=program, calls=calls, per_call_s=per_call_s,
                            max_chars=MAX_OUTPUT_CHARS, mark=_MARK)
    execution = sandbox.run(script, limits)
    if execution.passed:
        try:
            outputs = json.loads(execution.stdout.rpartition(_MARK)[2])
        except ValueError:
            outputs = None
        if isinstance(outputs, list) and all(isinstance(o, str) for o in outputs):
            return tuple(outputs)
    return (f"!{execution.status}",)
