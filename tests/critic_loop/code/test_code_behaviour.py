"""Execution-based grouping on a real HumanEval prompt: signatures from its own examples."""

from __future__ import annotations

from critic_loop.code.behaviour import Behaviour, behaviours, group_ids
from critic_loop.code.examples import Example, parse_examples
from critic_loop.code.sandbox import Sandbox
from tests.support.humaneval_rows import humaneval


def test_the_examples_of_a_real_prompt_are_parsed() -> None:
    row = humaneval("HumanEval/0")
    assert parse_examples(row["prompt"], row["entry_point"]) == [
        Example("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False"),
        Example("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True")]


def test_candidates_group_by_behaviour_and_contradictions_are_counted(sandbox: Sandbox) -> None:
    row = humaneval("HumanEval/0")
    right = row["canonical_solution"]
    same_but_written_differently = (
        "```python\ndef has_close_elements(numbers, threshold):\n"
        "    s = sorted(numbers)\n"
        "    return any(b - a < threshold for a, b in zip(s, s[1:]))\n```")
    always_true = "```python\ndef has_close_elements(numbers, threshold):\n    return True\n```"
    crashes = "    return numbers[100]\n"
    hangs = "```python\ndef has_close_elements(numbers, threshold):\n    while True:\n        pass\n```"
    broken = "```python\ndef has_close_elements(numbers, threshold)\n    return 1\n```"
    found = behaviours(sandbox, row["prompt"], [right, same_but_written_differently, always_true,
                                                crashes, hangs, broken],
                       row["entry_point"], per_call_s=0.5)
    assert found[0] == found[1] == Behaviour(("False", "True"), 0)
    assert found[2] == Behaviour(("True", "True"), 1)
    assert found[3] == Behaviour(("!IndexError", "!IndexError"), 2)
    assert found[4] == Behaviour(("!TimeoutError", "!TimeoutError"), 2)
    assert found[5] == Behaviour(("!load SyntaxError",), 2)
    assert group_ids(found) == [0, 0, 1, 2, 3, 4]


def test_a_prompt_without_examples_gives_one_empty_group(sandbox: Sandbox) -> None:
    found = behaviours(sandbox, "def f(x):\n    \"\"\"Doubles x.\"\"\"\n", ["    return 2 * x\n"], "f")
    assert found == [Behaviour((), 0)]


def test_a_candidates_own_prints_do_not_spoil_its_outputs(sandbox: Sandbox) -> None:
    prompt = 'def inc(x):\n    """\n    >>> inc(1)\n    2\n    """\n'
    found = behaviours(sandbox, prompt, ["    print('thinking', end='')\n    return x + 1\n"], "inc")
    assert found == [Behaviour(("2",), 0)]


def test_prose_in_real_prompts_states_nothing_and_free_names_are_dropped() -> None:
    # "fruit_distribution(...) ->19 - 5 - 6 = 8": the worked sum states 8.
    sums = humaneval("HumanEval/67")
    assert parse_examples(sums["prompt"], sums["entry_point"])[0] == Example(
        'fruit_distribution("5 apples and 6 oranges", 19)', "8")
    # "is_simple_power(1, 4) => true": not a Python literal, so no stated output.
    lower = humaneval("HumanEval/76")
    assert {e.expected for e in parse_examples(lower["prompt"], lower["entry_point"])} == {None}
    # "is_happy(a) => False": `a` is prose for a string, not a name the prompt defines.
    free = humaneval("HumanEval/80")
    assert parse_examples(free["prompt"], free["entry_point"]) == []


def test_right_programs_of_real_prompts_contradict_no_stated_output(sandbox: Sandbox) -> None:
    for task_id in ("HumanEval/67", "HumanEval/76", "HumanEval/151", "HumanEval/158"):
        row = humaneval(task_id)
        found = behaviours(sandbox, row["prompt"], [row["canonical_solution"]], row["entry_point"])
        assert found[0].contradictions == 0, (task_id, found)
