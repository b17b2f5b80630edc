"""A scripted OpenAI-compatible endpoint on an httpx MockTransport (no sockets).

Each question has a greedy answer, candidate answers (sampling returns the first n, one
sample returns the first) and the candidate each judge mode picks, so every strategy's
accuracy is known in advance. `self_critic=False` plays a peer (vLLM's own server), which
ignores the unknown field and answers a plain completion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

PROMPT_TOKENS = 10
JUDGE_TOKENS_PER_CALL = 7


@dataclass
class Script:
    """What the endpoint answers for one question."""

    greedy: str
    candidates: list[str]
    winner: dict[str, int] = field(default_factory=lambda: {"fast": 0, "reason": 0})


@dataclass
class FakeEndpoint:
    """Answers `/v1/models` and `/v1/chat/completions` from `scripts` (by question text)."""

    scripts: dict[str, Script]
    self_critic: bool = True
    merge: bool = True
    model: str = "tiny"
    fail: dict[str, int] = field(default_factory=dict)
    """Question text → HTTP status to answer instead (once per request)."""
    overloaded: int = 0
    """Answer this many requests with 429 (Retry-After: 0) first."""
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [
                {"id": self.model}, {"id": self.model + ":self-critic"}]})
        body = json.loads(request.content)
        self.requests.append(body)
        if self.overloaded > 0:
            self.overloaded -= 1
            return httpx.Response(429, headers={"Retry-After": "0"},
                                  json={"error": {"message": "busy"}})
        question = body["messages"][-1]["content"]
        if question in self.fail:
            return httpx.Response(self.fail[question], json={"error": {"message": "boom"}})
        script = self.scripts[question]
        options = body.get("self_critic") if self.self_critic else None
        if options is not None:
            if "merge" in options and not self.merge:
                return httpx.Response(400, json={"error": {
                    "message": "self_critic.merge: Extra inputs are not permitted",
                    "type": "invalid_request_error", "param": "self_critic", "code": None}})
            return httpx.Response(200, json=self._self_critic(script, body, options))
        greedy = body.get("temperature") == 0
        texts = [script.greedy] if greedy else script.candidates[: body.get("n", 1)]
        return httpx.Response(200, json=_completion(self.model, texts, _usage(texts)))

    def _self_critic(self, script: Script, body: dict[str, Any],
                     options: dict[str, Any]) -> dict[str, Any]:
        n = options["candidates"]
        texts = script.candidates[:n]
        winner = script.winner[options["judge"]] % n
        ranked = [texts[winner]] + [t for i, t in enumerate(texts) if i != winner]
        calls = (n - 1) * options["comparisons"]
        usage = _usage(texts, judge=calls * JUDGE_TOKENS_PER_CALL)
        out = _completion(self.model, ranked[: body.get("n", 1)], usage)
        out["self_critic"] = {
            "candidates": n, "judge": options["judge"], "comparisons": options["comparisons"],
            "rounds": 1, "judge_calls": calls, "consistency": 1.0, "invalid_votes": 0,
            "entrants": n, "trace": {"ranking": [], "candidates": [
                {"index": i, "text": t, "finish_reason": "stop"} for i, t in enumerate(texts)],
                "rounds": []}}
        return out


def _usage(texts: list[str], judge: int = 0) -> dict[str, int]:
    completion = sum(len(t.split()) for t in texts) + judge
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion,
            "total_tokens": PROMPT_TOKENS + completion}


def _completion(model: str, texts: list[str], usage: dict[str, int]) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                         "finish_reason": "stop"} for i, t in enumerate(texts)],
            "usage": usage}
