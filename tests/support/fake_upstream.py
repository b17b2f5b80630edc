"""A fake OpenAI-compatible upstream (`/health`, `/v1/models`, `/v1/completions`, streaming
included, vLLM's extras optional) and a word tokenizer to go with it.

Unit tests mount it in-process through `httpx.ASGITransport`; the failover test runs it as
a process it can kill: `python tests/support/fake_upstream.py PORT NAME [DELAY_S]`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

VLLM_EXTRAS = ("allowed_token_ids", "logprob_token_ids", "return_token_ids",
               "return_tokens_as_token_ids")


@dataclass
class FakeUpstream:
    """What the fake answers and what it saw."""

    name: str
    vllm_extras: bool = True
    delay_s: float = 0.0
    """Pause before each streamed token (and once per non-streamed call)."""
    healthy: bool = True
    max_model_len: int = 4096
    root: str | None = None
    aliases: tuple[str, ...] = ()
    """Suffixes listed as models beside "fake-model" (":judge": it has a judge adapter)."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    in_flight: int = 0
    """Completions being answered now (`GET /fake/in-flight`: a test waits for one)."""

    def words(self, index: int) -> list[str]:
        return [self.name, " answer", f" {index}", " done"]


def create_fake_app(fake: FakeUpstream) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({}, status_code=200 if fake.healthy else 503)

    @app.get("/fake/in-flight")
    async def in_flight() -> dict[str, int]:
        return {"in_flight": fake.in_flight}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": "fake-model" + alias, "root": fake.root, "max_model_len": fake.max_model_len}
            for alias in ("", *fake.aliases)]}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        fake.keys.append(request.headers.get("authorization"))
        fake.request_ids.append(request.headers.get("x-request-id", ""))
        if not fake.healthy:
            return JSONResponse({"error": {"message": "engine dead"}}, status_code=500)
        unknown = [k for k in VLLM_EXTRAS if k in body]
        if unknown and not fake.vllm_extras:  # a strict OpenAI server
            return JSONResponse({"error": {"message": f"unknown field {unknown[0]}"}},
                                status_code=400)
        fake.calls.append(body)
        if (body.get("structured_outputs") or {}).get("regex") == "(":
            return JSONResponse({"error": {"message": "invalid regex '('"}}, status_code=400)
        if not isinstance(body["prompt"], list):
            return JSONResponse({"error": {"message": "want token ids"}}, status_code=400)
        if body.get("stream"):
            return StreamingResponse(_stream(fake, body), media_type="text/event-stream")
        fake.in_flight += 1
        try:
            await asyncio.sleep(fake.delay_s)
        finally:
            fake.in_flight -= 1
        choices = [_choice(fake, body, i, fake.words(i)) for i in range(body.get("n", 1))]
        return {"object": "text_completion", "model": "fake-model", "choices": choices,
                "usage": {"prompt_tokens": len(body["prompt"]),
                          "completion_tokens": sum(len(c.get("token_ids") or []) for c in choices),
                          "prompt_tokens_details": {"cached_tokens": 3}}}

    return app


def _choice(fake: FakeUpstream, body: dict[str, Any], index: int,
            words: Sequence[str], finish: str | None = "auto") -> dict[str, Any]:
    if body.get("allowed_token_ids"):  # a fast verdict: the lowest allowed id, every logprob
        ids = body["allowed_token_ids"]
        tops = {f"token_id:{i}": -0.1 * (k + 1) for k, i in enumerate(ids)}
        return {"index": index, "text": "1", "token_ids": [ids[0]], "finish_reason": "length",
                "logprobs": {"tokens": [f"token_id:{ids[0]}"], "token_logprobs": [-0.1],
                             "top_logprobs": [tops]}}
    if body.get("logit_bias"):  # the fallback: top logprobs as plain strings
        return {"index": index, "text": "2", "finish_reason": "length",
                "logprobs": {"tokens": ["2"], "token_logprobs": [-0.2],
                             "top_logprobs": [{"2": -0.2, "1": -1.7, "x": -5.0}]}}
    limit = body.get("max_tokens", 16)
    kept = list(words[:limit])
    if finish == "auto":
        finish = "length" if len(words) > limit else "stop"
    choice: dict[str, Any] = {"index": index, "text": "".join(kept), "finish_reason": finish}
    if body.get("return_token_ids"):
        choice["token_ids"] = [100 + k for k in range(len(kept))]
    if body.get("logprobs") is not None:
        as_ids = body.get("return_tokens_as_token_ids")
        tokens = [f"token_id:{100 + k}" if as_ids else w for k, w in enumerate(kept)]
        choice["logprobs"] = {"tokens": tokens, "token_logprobs": [-0.5] * len(kept),
                              "top_logprobs": [{t: -0.5, "zz": -3.0} for t in tokens]}
    return choice


async def _stream(fake: FakeUpstream, body: dict[str, Any]) -> AsyncIterator[str]:
    fake.in_flight += 1
    try:
        async for line in _stream_lines(fake, body):
            yield line
    finally:
        fake.in_flight -= 1


async def _stream_lines(fake: FakeUpstream, body: dict[str, Any]) -> AsyncIterator[str]:
    n = body.get("n", 1)
    limit = body.get("max_tokens", 16)
    for index in range(n):
        words = fake.words(index)[:limit]
        for k, word in enumerate(words):
            await asyncio.sleep(fake.delay_s)
            last = k == len(words) - 1
            finish = ("length" if len(fake.words(index)) > limit else "stop") if last else None
            piece = _choice(fake, {**body, "max_tokens": 1}, index, [word], finish)
            if piece.get("token_ids"):
                piece["token_ids"] = [100 + k]
            yield f"data: {json.dumps({'choices': [piece]})}\n\n"
    yield f"data: {json.dumps({'choices': [], 'usage': {'prompt_tokens': 1}})}\n\n"
    yield "data: [DONE]\n\n"


class WordTokenizer:
    """A tokenizer where a word (with its leading space) is one token; "1"/"2" exist."""

    def __init__(self) -> None:
        self.all_special_ids = [0]
        self.all_special_tokens = ["<eos>"]
        self.vocab = ["<eos>", "1", "2", " 1", " 2"]

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids = []
        for k, word in enumerate(text.split(" ")):
            piece = word if k == 0 else " " + word
            if piece not in self.vocab:
                self.vocab.append(piece)
            ids.append(self.vocab.index(piece))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.vocab[i] if i < len(self.vocab) else f"<{i}>" for i in ids)

    def apply_chat_template(self, messages: Sequence[dict[str, Any]], tokenize: bool = False,
                            add_generation_prompt: bool = True, tools: Any = None) -> str:
        return " ".join(f"{m['role']}: {m['content']}" for m in messages) + " assistant:"


if __name__ == "__main__":
    import uvicorn

    port, name = int(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    root = (sys.argv[4] if len(sys.argv) > 4 else "") or None
    uvicorn.run(create_fake_app(FakeUpstream(name, delay_s=delay, root=root)),
                host="127.0.0.1", port=port, log_level="warning")
