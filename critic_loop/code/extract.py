"""The program a model's answer gives for a code problem: pure text work, nothing runs here.

Answers come as a fenced block or bare code, and as a whole function (often with its
imports, sometimes with example calls after it) or only the body that completes the
prompt. `program_for` turns any of these into one script that defines the entry point;
the prompt goes in front, so the imports and helpers it defines are there even when the
answer left them out (a function the answer redefines simply replaces the prompt's stub).
"""

from __future__ import annotations

import ast
import re
import textwrap

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)",
                    re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = ("", "python", "py", "python3")
_CODE_START = re.compile(r"^(?:def |async def |class |import |from \S+ import |@)", re.MULTILINE)


def code_blocks(answer: str) -> list[str]:
    """The Python code of each fenced block, in order (an unclosed last fence counts:
    answers cut off by the token budget end inside one).

    >>> code_blocks("Here:\\n```python\\nx = 1\\n```\\nand\\n```\\ny = 2\\n```")
    ['x = 1\\n', 'y = 2\\n']
    >>> code_blocks("```js\\nlet x\\n```\\n```py\\nz = 3")
    ['z = 3']
    """
    return [body for tag, body in _FENCE.findall(answer)
            if tag.lower() in _PYTHON_TAGS and body.strip()]


def extract_code(answer: str, entry_point: str | None = None) -> str:
    """The code in `answer`: the first fenced block that defines `entry_point`, else the
    first fenced block that defines any function, else the last fenced block, else the
    answer's bare code (from its first `def`/`import` line, prose after it cut off).

    >>> extract_code("Sure!\\n```python\\nprint(f(1))\\n```\\n```python\\ndef f(x):\\n"
    ...              "    return x\\n```", "f")
    'def f(x):\\n    return x\\n'
    >>> extract_code("def f(x):\\n    return x + 1\\n\\nThis adds one.")
    'def f(x):\\n    return x + 1\\n'
    """
    blocks = code_blocks(answer)
    if blocks:
        for wanted in (entry_point, None):
            for block in blocks:
                if _defines(block, wanted):
                    return block
        return blocks[-1]
    return _bare_code(answer)


def program_for(answer: str, prompt: str | None = None, entry_point: str | None = None) -> str:
    """One script from `answer` that defines `entry_point` given the problem's `prompt`.

    A whole function (with or without its imports) is appended to the prompt; a body
    (indented, or flush left when the answer defines no function) is appended to it as
    the body of the prompt's last function. Without a prompt (an MBPP-style problem
    stated in prose) the code stands alone.

    >>> prompt = "import math\\n\\ndef area(r):\\n    '''Disc area.'''\\n"
    >>> print(program_for("```python\\ndef area(r):\\n    return math.pi * r * r\\n```", prompt, "area"))
    import math
    <BLANKLINE>
    def area(r):
        '''Disc area.'''
    <BLANKLINE>
    def area(r):
        return math.pi * r * r
    <BLANKLINE>
    >>> program_for("    return math.pi * r * r", prompt, "area")[-36:]
    "area.'''\\n    return math.pi * r * r\\n"
    """
    code = extract_code(answer, entry_point)
    if not prompt:
        return code
    head = prompt if prompt.endswith("\n") else prompt + "\n"
    if _defines(code, entry_point) or (entry_point is None and _defines(code, None)):
        return f"{head}\n{code}"
    body = code if _indented(code) else textwrap.indent(code, "    ")
    return head + body


def _defines(code: str, name: str | None) -> bool:
    """Whether `code` defines the function `name` (any function when None) at top level."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        named = re.escape(name) if name else r"\w+"
        pattern = rf"^(?:async\s+)?def\s+{named}\s*\("
        return re.search(pattern, code, re.MULTILINE) is not None
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
               and (name is None or node.name == name) for node in tree.body)


def _indented(code: str) -> bool:
    first = next((line for line in code.splitlines() if line.strip()), "")
    return first[:1] in (" ", "\t")


def _bare_code(answer: str) -> str:
    """Code given without a fence: from its first code line, shortened until it parses."""
    text = answer.strip("\n")
    if _parses(text) or _indented(text):
        return text + "\n"
    start = _CODE_START.search(text)
    lines = text[start.start():].splitlines() if start else text.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end]).rstrip()
        if candidate and _parses(candidate):
            return candidate + "\n"
    return text + "\n"


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True
