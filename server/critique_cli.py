"""`selfcritic critique`: judge responses from the command line, against a running server
(`--url`) or in-process on a model."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

logger = logging.getLogger(__name__)


def add_critique_parser(sub: Any) -> None:
    p = sub.add_parser("critique", help="Judge two or more responses to a question.",
                       description="Judge responses pairwise (two: a verdict; more: a knockout "
                                   "ranking) and print the /v1/critique JSON.")
    p.add_argument("--question", required=True, help="The question the responses answer.")
    p.add_argument("--response", action="append", required=True, dest="responses",
                   help="A response; give it twice or more.")
    p.add_argument("--judge", choices=["reason", "fast"], help="Judge mode.")
    p.add_argument("--comparisons", type=int, help="Judgments per match (K).")
    p.add_argument("--max-tokens", type=int, help="Token budget of one reason judgment.")
    p.add_argument("--seed", type=int, help="Seed for byes, coins and sampling.")
    p.add_argument("--url", help="A running server, e.g. http://127.0.0.1:8000 (else the "
                   "model is loaded in this process).")
    p.add_argument("--api-key", help="API key for --url (or SELFCRITIC_API_KEY).")
    p.add_argument("--model", default="default", help="In-process: 'default' or a directory.")
    p.set_defaults(run=run_critique)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body = {"question": args.question, "responses": args.responses, "judge": args.judge,
            "comparisons": args.comparisons, "max_tokens": args.max_tokens, "seed": args.seed}
    return {k: v for k, v in body.items() if v is not None}


def run_critique(args: argparse.Namespace) -> int:
    from server.cli import configure_logging

    configure_logging("warning")
    body = _body(args)
    if args.url:
        status, answer = _remote(args.url, body, args.api_key)
    else:
        status, answer = asyncio.run(_in_process(args.model, body))
    sys.stdout.write(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
    return 0 if status == 200 else 1


def _remote(url: str, body: dict[str, Any], api_key: str | None) -> tuple[int, Any]:
    import os

    import httpx

    key = api_key or os.environ.get("SELFCRITIC_API_KEY", "").split(",")[0]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(url.rstrip("/") + "/v1/critique", json=body, headers=headers,
                          timeout=600)
    return response.status_code, response.json()


async def _in_process(model: str, body: dict[str, Any]) -> tuple[int, Any]:
    """Run the same app in-process (no port) and call it, so validation and output match."""
    import httpx

    from server.app import create_app
    from server.settings import ServerSettings

    app = create_app(ServerSettings(model=model, enforce_eager=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://selfcritic") as client:
            response = await client.post("/v1/critique", json=body, timeout=600)
    return response.status_code, response.json()
