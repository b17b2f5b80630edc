"""The verdict parser on messy judge output, and probabilities from choice logprobs."""

from __future__ import annotations

import math

import pytest

from critic_loop.verdict import (
    boxed_contents,
    follows_reason_format,
    parse_verdict,
    probabilities_from_logprobs,
    verdict_from_box,
)


@pytest.mark.parametrize(("text", "verdict"), [
    ("<think>compare</think> \\boxed{1}", 1),
    ("\\boxed{2}", 2),
    ("\\boxed{1} then, on reflection, \\boxed{2}", 2),          # several boxes: the last
    ("\\boxed{2} and finally \\boxed{Response 1}.", 1),
    ("\\boxed{Response 2}", 2),
    ("\\boxed{\\text{Response 1}}", 1),
    ("\\boxed{\\textbf{2}}", 2),
    ("\\boxed{\\mathbf{1}}", 1),
    ("\\boxed { 1 }", 1),
    ("\\boxed{2} but the last box is \\boxed{both}", 2),          # unreadable box skipped
    ("\\boxed{1 or 2}", None),
    ("\\boxed{3}", None),
    ("\\boxed{}", None),
    ("\\boxed{12}", None),
    ("\\boxed{1.5}", None),
    ("\\boxed{unclosed 1", None),
    ("\\boxed{neither} Response 1 is better.", None),            # a box wins over prose
    ("Response 2 is better.", 2),                                # no box: a stated verdict
    ("Response 1 is better. No wait, Response 2 is better.", 2),
    ("**1**", 1),
    ("2", 2),
    ("Response 1", 1),
    ("", None),
    ("Both are fine.", None),
    ("asdf 1 qwer 2", None),
    ("<think>unfinished reasoning about response 1", None),
])
def test_parse_verdict(text: str, verdict: int | None) -> None:
    assert parse_verdict(text) == verdict


def test_boxed_contents_balances_braces() -> None:
    assert boxed_contents("\\boxed{\\text{a{b}}} x \\boxed{2}") == ["\\text{a{b}}", "2"]
    assert boxed_contents("no box") == []


def test_verdict_from_box() -> None:
    assert verdict_from_box(" Response 2 ") == 2
    assert verdict_from_box("$1$") == 1
    assert verdict_from_box("Response 1 and Response 2") is None
    assert verdict_from_box("2 apples") is None


def test_follows_reason_format() -> None:
    assert follows_reason_format("<think>a\nb</think>\nSo \\boxed{1}.")
    assert not follows_reason_format("<think>a</think> 1")
    assert not follows_reason_format("\\boxed{1} <think>late</think>")


def test_probabilities_from_logprobs() -> None:
    assert probabilities_from_logprobs({"1": math.log(0.2), "2": math.log(0.6)}) == \
        pytest.approx((0.25, 0.75))
    assert probabilities_from_logprobs({"1": -math.inf, "2": -3.0}) == (0.0, 1.0)
    assert probabilities_from_logprobs({"1": -1e4, "2": -1e4 - 1}) == pytest.approx(
        (1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))))
    assert probabilities_from_logprobs({"1": -0.1}) is None
    assert probabilities_from_logprobs({"1": -math.inf, "2": -math.inf}) is None
    assert probabilities_from_logprobs({"1": math.nan, "2": -1.0}) is None
    assert probabilities_from_logprobs({"A": -1.0, "B": -1.0}, ("A", "B")) == (0.5, 0.5)
