"""Sample once, select many: write greedy + N sampled candidates per question, with logprobs.

Comparing selection strategies is fair only on the same candidates, and on a 2-core CPU the
candidates are the whole cost. This script asks a running server (ours or any
OpenAI-compatible one) for one greedy answer (temperature 0) and one n=N sampling request per
question, with top-k logprobs, and appends them to a candidates file that
`selfcritic eval select` reads. It resumes: questions already in the file are skipped.

    python bench/candidates.py --url http://127.0.0.1:8000 --data humaneval --n 8 \\
        --output bench/results/humaneval_candidates.jsonl

Sampling uses the model's recommended settings: by default no sampling field is sent, so
our server fills them from the model's generation_config.json (the built-in Qwen2.5-Coder:
temperature 0.7, top_p 0.8, top_k 20, repetition_penalty 1.05; SmolLM2: temperature 0.2,
top_p 0.9). `--temperature` and friends send them explicitly, for servers that do not.
Code answers stop at the end of their first code block (`\\n```\\n`): the prompt asks
for one block, and the prose a model writes after it is never graded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import openai
from tqdm import tqdm

from evaluation.code_tasks import (
    CODE_STOP,
    code_question_text,
    humaneval_rows,
    is_code_row,
    row_id,
)

logger = logging.getLogger("bench.candidates")


def load_rows(data: str) -> list[dict[str, Any]]:
    """`humaneval`, or a JSONL file of questions (`question`) or code problems."""
    if data == "humaneval":
        return humaneval_rows()
    return [json.loads(line) for line in Path(data).read_text().splitlines() if line.strip()]


def question_of(row: dict[str, Any]) -> str:
    return code_question_text(row) if is_code_row(row) else row["question"]


def pack(choice: Any) -> dict[str, Any]:
    """A choice as the candidates file stores it: text, finish reason, token logprobs."""
    content = choice.logprobs.content if choice.logprobs else None
    return {"text": choice.message.content or "", "finish_reason": choice.finish_reason,
            "logprobs": [[t.logprob, [x.logprob for x in t.top_logprobs]]
                         for t in content or ()]}


async def candidates_for(client: openai.AsyncOpenAI, args: argparse.Namespace,
                         row: dict[str, Any], index: int) -> dict[str, Any]:
    code = is_code_row(row)
    common: dict[str, Any] = {
        "model": args.model, "messages": [{"role": "user", "content": question_of(row)}],
        "max_tokens": args.max_tokens or (512 if code else 64), "logprobs": True,
        "top_logprobs": args.top_logprobs, "stop": list(CODE_STOP) if code else None}
    sampling = {k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p))
                if v is not None}
    extra = {k: v for k, v in (("top_k", args.top_k),
                               ("repetition_penalty", args.repetition_penalty)) if v is not None}
    requests = [client.chat.completions.create(temperature=0, seed=args.seed, **common)]
    if args.n:
        requests.append(client.chat.completions.create(
            n=args.n, seed=args.seed + 1234, **sampling, extra_body=extra or None, **common))
    greedy, *sampled = await asyncio.gather(*requests)
    choices = sorted(sampled[0].choices, key=lambda c: c.index) if sampled else []
    return {"task_id": row_id(row, f"q{index}"), "greedy": pack(greedy.choices[0]),
            "samples": [pack(c) for c in choices],
            "usage": {"greedy": greedy.usage.completion_tokens,
                      "samples": sampled[0].usage.completion_tokens if sampled else 0}}


async def run(args: argparse.Namespace) -> None:
    rows = load_rows(args.data)[: args.limit]
    output = Path(args.output)
    done = set()
    if output.exists():
        done = {json.loads(line)["task_id"] for line in output.read_text().splitlines()}
    todo = [(i, r) for i, r in enumerate(rows) if row_id(r, f"q{i}") not in done]
    logger.info("%d questions, %d already in %s", len(rows), len(rows) - len(todo), output)
    client = openai.AsyncOpenAI(base_url=args.url.rstrip("/") + "/v1", api_key=args.api_key,
                                timeout=3600)
    if args.model is None:
        args.model = (await client.models.list()).data[0].id
    gate = asyncio.Semaphore(args.concurrency)

    async def one(i: int, row: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            return await candidates_for(client, args, row, i)

    start, tokens = time.monotonic(), 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a") as out, tqdm(total=len(todo), desc="candidates") as bar:
        for next_done in asyncio.as_completed([one(i, r) for i, r in todo]):
            record = await next_done
            out.write(json.dumps(record) + "\n")
            out.flush()
            tokens += record["usage"]["greedy"] + record["usage"]["samples"]
            bar.set_postfix(tok_s=f"{tokens / (time.monotonic() - start):.1f}")
            bar.update()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="server root, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--model", default=None, help="model name (default: the first listed)")
    parser.add_argument("--data", required=True, help="'humaneval' or a questions JSONL file")
    parser.add_argument("--output", required=True, help="candidates JSONL (appended, resumed)")
    parser.add_argument("--n", type=int, default=8,
                        help="sampled candidates per question (0: the greedy answer only)")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="answer budget (default 512 for code, 64 for text)")
    parser.add_argument("--top-logprobs", type=int, default=5)
    for flag, kind in (("--temperature", float), ("--top-p", float), ("--top-k", int),
                       ("--repetition-penalty", float)):
        parser.add_argument(flag, type=kind, default=None,
                            help="sent explicitly (default: the server's model defaults)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
