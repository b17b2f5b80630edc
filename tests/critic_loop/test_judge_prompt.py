"""The judge prompt: both modes, conversations, images."""

from __future__ import annotations

import pytest

from critic_loop.judge_prompt import (
    FAST_SUFFIX,
    REASON_SUFFIX,
    JudgeMode,
    judge_messages,
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


def test_fast_prompt_asks_for_a_digit() -> None:
    text = judge_text("Q", "a", "b", JudgeMode.FAST)
    assert text.endswith(FAST_SUFFIX) and "\\boxed" not in text


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
