"""The judge prompt: one text for serving and training.

A question (plain text or a conversation, images kept) and two responses become one
user message asking which response is better. Reason mode uses the LLaVA-Critic-R1
suffix (think in `<think>`, answer in `\\boxed{}`); fast mode asks for a single digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from critic_loop.engine import Message
from critic_loop.images import is_image_part


class JudgeMode(str, Enum):
    """How a judgment is made: reasoning then `\\boxed{}`, or one restricted token."""

    REASON = "reason"
    FAST = "fast"


JUDGE_INSTRUCTION = (
    "You are a strict and fair judge. Read the question and the two responses below, "
    "then decide which response answers the question better: the one that is more "
    "correct, more helpful and more relevant. Ignore length and style unless they "
    "change the answer's quality."
)

REASON_SUFFIX = (
    "You FIRST think about the reasoning process as an internal monologue and then provide "
    "the final answer. The reasoning process MUST BE enclosed within <think> </think> tags. "
    "The final answer MUST BE put in \\boxed{}."
    " Answer \\boxed{1} if Response 1 is better, or \\boxed{2} if Response 2 is better."
)
"""The paper's suffix, verbatim, followed by what the box must hold."""

FAST_ASK = (
    "Answer with a single digit: 1 if Response 1 is better, 2 if Response 2 is better."
)
"""Fast mode's ask. It comes before the question, not after the responses: everything up
to the first response is then the same for every judgment of one question, so the
engine's prefix cache prefills it once per request, and nothing but the chat template's
end-of-turn follows the second response."""

VERDICT_CHOICES: tuple[str, str] = ("1", "2")
"""The tokens a fast judgment chooses between, in response order."""

VERDICT_OPENING = "\n</think>\n\\boxed{"
"""What a reason judgment without a verdict is continued from after its reasoning: the
thinking closed and the box opened, so the next token is the verdict (`verdict_prefix`)."""

FORCED_VERDICT_TOKENS = 16
"""Context a reason judgment keeps beyond its budget for that continuation: the opening
(`<think>` too if the judge never wrote it), a token or two where the re-tokenised
reasoning meets it, and the verdict digit."""


def verdict_prefix(text: str) -> str:
    """A reason judgment's own reasoning, closed, then an open box: the assistant's answer
    so far when a judgment that gave no verdict is continued for one restricted token.
    The reasoning is everything before the first `</think>` (what follows it held no
    readable verdict); a judgment that never opened `<think>` gets the opening tag.

    >>> verdict_prefix("<think>17 * 3 = 51</think>")
    '<think>17 * 3 = 51\\n</think>\\n\\\\boxed{'
    >>> verdict_prefix("Both look right")
    '<think>\\nBoth look right\\n</think>\\n\\\\boxed{'
    """
    thinking = text.split("</think>", 1)[0].rstrip()
    if "<think>" not in thinking:
        thinking = f"<think>\n{thinking}"
    return thinking + VERDICT_OPENING


def question_text(question: str | Sequence[Message]) -> str:
    """The question as the judge reads it: a single user turn as-is, else a transcript.

    >>> question_text("What is 2+2?")
    'What is 2+2?'
    >>> question_text([{"role": "user", "content": "Hi"}])
    'Hi'
    >>> question_text([{"role": "system", "content": "Be brief."},
    ...                {"role": "user", "content": "Hi"}])
    'System: Be brief.\\nUser: Hi'
    """
    if isinstance(question, str):
        return question
    turns = [(str(m.get("role", "user")), _text_of(m.get("content"))) for m in question]
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1]
    return "\n".join(f"{role.capitalize()}: {text}" for role, text in turns)


def question_images(question: str | Sequence[Message]) -> list[dict[str, Any]]:
    """The image parts of a conversation, in order, so the judge sees what the policy saw."""
    if isinstance(question, str):
        return []
    images: list[dict[str, Any]] = []
    for message in question:
        content = message.get("content")
        if isinstance(content, list):
            images.extend(dict(p) for p in content if is_image_part(p))
    return images


def judge_text(question: str | Sequence[Message], response_1: str, response_2: str,
               mode: JudgeMode | str) -> str:
    """The judge's user-turn text for one ordering of two responses.

    Fixed text first, then the question, then the responses: the part before
    "[Response 1]" is byte-identical for every judgment of one question, which is what
    a prefix cache reuses. Reason mode ends with the paper's suffix, after the responses,
    as LLaVA-Critic-R1 appends it; fast mode puts its ask in front (`FAST_ASK`).
    """
    return judge_prefix(question, mode) + judge_responses(response_1, response_2, mode)


def judge_prefix(question: str | Sequence[Message], mode: JudgeMode | str) -> str:
    """What every judgment of `question` in `mode` starts with: the shared, cacheable part."""
    head = JUDGE_INSTRUCTION if JudgeMode(mode) is JudgeMode.REASON \
        else f"{JUDGE_INSTRUCTION} {FAST_ASK}"
    return f"{head}\n\n[Question]\n{question_text(question)}\n\n"


def judge_responses(response_1: str, response_2: str, mode: JudgeMode | str) -> str:
    """The part that differs between judgments: the two responses (and reason's suffix)."""
    body = f"[Response 1]\n{response_1}\n\n[Response 2]\n{response_2}"
    return f"{body}\n\n{REASON_SUFFIX}" if JudgeMode(mode) is JudgeMode.REASON else body


def judge_messages(question: str | Sequence[Message], response_1: str, response_2: str,
                   mode: JudgeMode | str = JudgeMode.REASON,
                   images: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The judge conversation: one user message, image parts first, then the text.

    `images` adds images given apart from the question (a training row's `image`);
    image parts found in a conversation question are carried over on their own.

    >>> judge_messages("Q?", "a", "b", "fast")[0]["role"]
    'user'
    """
    text = judge_text(question, response_1, response_2, mode)
    parts = question_images(question) + [_as_image_part(i) for i in images]
    if not parts:
        return [{"role": "user", "content": text}]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")


def _as_image_part(image: Any) -> dict[str, Any]:
    if is_image_part(image):
        return dict(image)
    return {"type": "image", "image": image}
