"""Execution-based grouping for a chat question that asks for a Python function.

The question's own code block (the function to complete, with its doctests) is all it
reads: the candidates are grouped by what they do on those examples, never on a
benchmark's hidden tests. The programs run on a `CodeGrader`'s threads, off the loop.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from critic_loop.code.examples import parse_examples
from critic_loop.code.extract import code_blocks
from critic_loop.code.grader import CodeGrader
from critic_loop.engine import Completion, Message

_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.MULTILINE)


@dataclass(frozen=True)
class FunctionPrompt:
    """The code a question asks to complete, its entry point and its examples' count."""

    code: str
    entry_point: str
    examples: int


def function_prompt(question: str) -> FunctionPrompt | None:
    """The first code block of `question` (else the question itself) that defines a
    function its examples call; the entry point is the last such function defined (a
    prompt's helpers come first). None when no example calls a function it defines.

    >>> found = function_prompt("Complete:\\n```python\\ndef helper(x):\\n    return x\\n"
    ...                         "\\ndef inc(x):\\n    '''\\n    >>> inc(1)\\n    2\\n    '''\\n```")
    >>> found.entry_point, found.examples, found.code.startswith("def helper")
    ('inc', 1, True)
    >>> function_prompt("What is 2 + 2?") is None
    True
    """
    for code in (*code_blocks(question), question):
        for name in reversed(_DEF.findall(code)):
            examples = parse_examples(code, name)
            if any(re.search(rf"\b{re.escape(name)}\s*\(", e.call) for e in examples):
                return FunctionPrompt(code, name, len(examples))
    return None


def last_user_text(messages: str | Sequence[Message]) -> str:
    """The text of the last user turn (its text parts joined), where a code question is.

    >>> last_user_text([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
    ...                 {"role": "user", "content": [{"type": "text", "text": "c"}]}])
    'c'
    """
    if isinstance(messages, str):
        return messages
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "\n".join(str(p.get("text", "")) for p in content or ()
                             if isinstance(p, dict) and p.get("type") == "text")
    return ""


@dataclass(frozen=True)
class BehaviourGrouping:
    """An `AsyncGroupBy` for `best_of_n`: each candidate's vote key on `prompt`'s examples
    (`CodeGrader.vote_keys`, shared with `eval policy --exec-grouping`)."""

    grader: CodeGrader
    prompt: FunctionPrompt

    async def __call__(self, completions: Sequence[Completion]) -> Sequence[Hashable]:
        return await self.grader.run_async(
            self.grader.vote_keys, self.prompt.code, [c.text for c in completions],
            self.prompt.entry_point, self.prompt.code)

    def to_dict(self) -> dict[str, Any]:
        """What the response's `self_critic` object reports (`SelfCriticReport.grouping`)."""
        return {"grouping": "behaviour", "behaviour": {
            "examples": self.prompt.examples, "entry_point": self.prompt.entry_point}}
