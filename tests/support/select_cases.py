"""Hand-made pools for `eval select` tests, with every figure worked out by hand.

Three numeric questions, N = 4 samples each, two tokens of top-2 logprobs per candidate
whose DeepConf confidence is exactly the number given (`confidence` below):

    q1 (4): greedy 4 ✓; samples 5 (c 2), 5 (c 2), 4 (c .5), 3 (c .5)
    q2 (7): greedy 6 ✗; samples 7 (c 3), 8 (c .5), 8 (c .5), 9 (c 1)
    q3 (2): greedy 2 ✓; samples 2, 2, 1, 3 (c 1 each)

vote: q1 ✗ (5), q2 ✗ (8), q3 ✓ → 1/3; confidence: q1 ✗ (5: 4 > .5), q2 ✓ (7: 3 > 1), q3 ✓
→ 2/3; a judge that knows the answer finds it in every pool → 3/3. pass@4 3/3, greedy 2/3,
mean sample accuracy (1/4 + 1/4 + 2/4) / 3 = 1/3.
"""

from __future__ import annotations

import json
from pathlib import Path

from critic_loop.engine import GenerationRequest
from critic_loop.runtime.engines.scripted import ScriptedEngine

QUESTIONS = [("q1", "What is 2 + 2?", "4"), ("q2", "What is 3 + 4?", "7"),
             ("q3", "What is 1 + 1?", "2")]
POOLS = {"q1": ("4", [("5", 2), ("5", 2), ("4", .5), ("3", .5)]),
         "q2": ("6", [("7", 3), ("8", .5), ("8", .5), ("9", 1)]),
         "q3": ("2", [("2", 1), ("2", 1), ("1", 1), ("3", 1)])}
RIGHT = {qid: answer for qid, _, answer in QUESTIONS}


def text(value: str) -> str:
    return f"the answer is {value}"


def candidate(value: str, confidence: float = 1.0) -> dict:
    """Token confidence = -(mean of the top-2 logprobs) = `confidence`."""
    top = [-confidence, -confidence]
    return {"text": text(value), "finish_reason": "stop",
            "logprobs": [[-confidence, top], [-confidence, top]]}


def write_case(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps({"id": i, "question": q, "answer": a,
                                        "grader": "numeric"}) + "\n" for i, q, a in QUESTIONS))
    cands = tmp_path / "candidates.jsonl"
    cands.write_text("".join(json.dumps({
        "task_id": qid, "greedy": candidate(greedy),
        "samples": [candidate(v, c) for v, c in samples]}) + "\n"
        for qid, (greedy, samples) in POOLS.items()))
    return data, cands


def _shown(prompt: str, marker: str) -> str:
    at = prompt.index(marker) + len(marker)
    return prompt[at:].split("\n", 1)[0]


def judge_engine(knows: bool) -> ScriptedEngine:
    """A fast/reason judge that prefers the right answer in either order (`knows`), or
    always says Response 1 (position bias)."""
    def respond(request: GenerationRequest, index: int) -> str:
        first, second = _shown(request.prompt, "[Response 1]\n"), _shown(request.prompt,
                                                                          "[Response 2]\n")
        said = "1"
        if knows:
            right = [t for t in (text(v) for v in RIGHT.values())]
            said = "2" if second in right and first not in right else "1"
        return said if request.sampling.choices else f"<think>ok</think> \\boxed{{{said}}}"
    return ScriptedEngine(respond)
