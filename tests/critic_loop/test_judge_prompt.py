"""The judge prompt: both modes, conversations, images."""

from __future__ import annotations

import pytest

from critic_loop.judge_prompt import (
    FAST_ASK,
    JUDGE_INSTRUCTION,
    REASON_SUFFIX,
    JudgeMode,
    judge_messages,
    judge_prefix,
    judge_text,
    question_images,
    question_text,
)

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def test_reason_prompt_holds_question_responses_and_the_paper_suffix() -> None:
    [message] = judge_messages("What is 2+2?", "four", "five", "reason")
    text = message["content"]
    assert message["role"] == "user"
    assert text.index("What is 2+2?") < text.index("[Response 1]\nfour") < text.index(
        "[Response 2]\nfive")
    assert text.endswith(REASON_SUFFIX)
    assert "MUST BE enclosed within <think> </think> tags" in text


def test_fast_prompt_asks_for_a_digit_before_the_question_and_ends_on_response_2() -> None:
    text = judge_text("Q", "a", "b", JudgeMode.FAST)
    assert "\\boxed" not in text
    assert text.index(FAST_ASK) < text.index("[Question]\nQ") < text.index("[Response 1]\na")
    assert text.endswith("[Response 2]\nb")


@pytest.mark.parametrize("mode", ["fast", "reason"])
def test_every_judgment_of_one_question_shares_its_prefix_byte_for_byte(mode: str) -> None:
    """The prefix cache reuses only an identical prefix: all that precedes the responses
    (instruction, ask, question) must be the same text for every pair and order."""
    question = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 12 * 12?"}]
    candidates = ["144", "It is 124.", "12 * 12 = 144, so the answer is 144.", ""]
    texts = [judge_text(question, x, y, mode) for x in candidates for y in candidates if x != y]
    prefix = judge_prefix(question, mode)
    assert all(t.startswith(prefix) for t in texts)
    assert all(t[len(prefix):].startswith("[Response 1]\n") for t in texts)
    assert "What is 12 * 12?" in prefix and JUDGE_INSTRUCTION in prefix


def test_swapping_responses_swaps_only_them() -> None:
    one = judge_text("Q", "alpha", "beta", "reason")
    two = judge_text("Q", "beta", "alpha", "reason")
    assert one != two and one.replace("alpha", "X").replace("beta", "alpha").replace(
        "X", "beta") == two


def test_conversation_questions() -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, IMAGE]},
    ]
    assert question_text(conversation) == "System: Be brief.\nUser: Look:"
    assert question_text([{"role": "user", "content": None}]) == ""
    assert question_images(conversation) == [IMAGE]
    assert question_images("plain") == []


def test_images_come_first_in_the_judge_message() -> None:
    conversation = [{"role": "user", "content": [IMAGE, {"type": "text", "text": "What?"}]}]
    [message] = judge_messages(conversation, "a", "b", "fast", images=["raw-bytes"])
    parts = message["content"]
    assert parts[0] == IMAGE and parts[1] == {"type": "image", "image": "raw-bytes"}
    assert parts[2]["type"] == "text" and "[Question]\nWhat?" in parts[2]["text"]


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError):
        judge_text("Q", "a", "b", "slow")
