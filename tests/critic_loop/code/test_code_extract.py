"""Taking the program out of model answers: fences, bare code, whole functions and bodies."""

from __future__ import annotations

import pytest

from critic_loop.code.extract import code_blocks, extract_code, program_for

PROMPT = ('from typing import List\n\n\ndef below_zero(operations: List[int]) -> bool:\n'
          '    """ Whether the balance ever falls below zero.\n'
          '    >>> below_zero([1, 2, -4, 5])\n    True\n    """\n')
BODY = "    balance = 0\n    for op in operations:\n        balance += op\n" \
       "        if balance < 0:\n            return True\n    return False\n"
FUNCTION = "def below_zero(operations):\n" + BODY


def _runs(program: str) -> bool:
    namespace: dict[str, object] = {}
    exec(compile(program, "solution.py", "exec"), namespace)
    below_zero = namespace["below_zero"]
    return below_zero([1, 2, -4, 5]) is True and below_zero([1, 2]) is False  # type: ignore[operator]


@pytest.mark.parametrize("answer", [
    f"Here is the function:\n```python\n{FUNCTION}```\nIt keeps a running balance.",
    f"```python\nfrom typing import List\n\n{FUNCTION}\nprint(below_zero([1, -2]))\n```",
    f"```\n{FUNCTION}```",
    f"```python\n{BODY}```",
    BODY,
    FUNCTION + "\nThis works because the balance is checked after every operation.",
    "Sure, here it is:\n\n" + FUNCTION,
    "```python\nbalance = 0\nfor op in operations:\n    balance += op\n    if balance < 0:\n"
    "        return True\nreturn False\n```",
    f"```python\nassert below_zero([-1])\n```\nand\n```python\n{FUNCTION}```",
    f"```python\n{FUNCTION}",  # cut off by the token budget inside the fence
])
def test_every_answer_shape_gives_a_program_that_runs(answer: str) -> None:
    assert _runs(program_for(answer, PROMPT, "below_zero"))


def test_the_prompts_imports_and_helpers_stay_when_the_answer_omits_them() -> None:
    prompt = "import math\n\ndef helper(x):\n    return x * 2\n\ndef f(x):\n    \"\"\"Doc.\"\"\"\n"
    program = program_for("```python\ndef f(x):\n    return helper(math.floor(x))\n```", prompt, "f")
    namespace: dict[str, object] = {}
    exec(program, namespace)
    assert namespace["f"](2.5) == 4  # type: ignore[operator]


def test_without_a_prompt_the_code_stands_alone() -> None:
    answer = "```python\ndef add(a, b):\n    return a + b\n```"
    assert program_for(answer, None, "add") == "def add(a, b):\n    return a + b\n"


def test_blocks_in_other_languages_are_ignored_and_the_defining_block_wins() -> None:
    answer = ("```bash\npython x.py\n```\n```python\nx = add(1, 2)\n```\n"
              "```python\ndef add(a, b):\n    return a + b\n```")
    assert code_blocks(answer) == ["x = add(1, 2)\n", "def add(a, b):\n    return a + b\n"]
    assert extract_code(answer, "add") == "def add(a, b):\n    return a + b\n"


def test_an_answer_with_no_code_gives_its_text() -> None:
    assert extract_code("I cannot solve this.").strip() == "I cannot solve this."
