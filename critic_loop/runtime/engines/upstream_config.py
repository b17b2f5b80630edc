"""How to reach the upstreams: their URLs and keys, one HTTP client each, the model they
serve (found in `/v1/models`, with the tokenizer that goes with it), and whether they take
vLLM's extras."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from critic_loop.config import ALIAS_SUFFIXES
from critic_loop.engine import EngineError, SamplingOptions
from critic_loop.judge_prompt import VERDICT_CHOICES
from critic_loop.runtime.engines.upstream_pool import Upstream, display_url
from critic_loop.runtime.engines.upstream_wire import TOKEN_ID_PREFIX, completion_body, raw_choice

logger = logging.getLogger(__name__)

Transport = Callable[[str], httpx.AsyncBaseTransport]
"""Makes the transport for an upstream URL (tests reach fake upstreams in-process)."""


@dataclass(frozen=True)
class UpstreamConfig:
    """Where the upstreams are and how to reach them."""

    urls: tuple[str, ...]
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    """One key for all, or one per URL (an empty one sends none)."""
    model: str | None = None
    """The upstream's model id; None takes the one it lists."""
    tokenizer: str | None = None
    """Where the chat template and tokenizer are; None: the upstream's model `root`."""
    max_model_len: int = 2048
    """Used when the upstream does not report its own."""
    request_timeout_s: float = 600.0
    probe_interval_s: float = 2.0
    connect_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("at least one upstream URL is needed")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream URL must start with http:// or https://: {url!r}")
        object.__setattr__(self, "urls", tuple(server_root(url) for url in self.urls))
        if len(self.api_keys) not in (0, 1, len(self.urls)):
            raise ValueError(f"{len(self.api_keys)} upstream API keys for {len(self.urls)} "
                             "upstreams: give one key for all, or one per upstream")

    def key_for(self, index: int) -> str | None:
        if not self.api_keys:
            return None
        return (self.api_keys[0] if len(self.api_keys) == 1 else self.api_keys[index]) or None


def server_root(url: str) -> str:
    """The server's root from an upstream URL given either way: as the root, or as the
    `/v1` base URL that the openai client, LiteLLM and optillm take (paths are added here).

    >>> [server_root(u) for u in ("http://h:8000", "http://h:8000/v1/", "https://h/proxy/v1")]
    ['http://h:8000', 'http://h:8000', 'https://h/proxy']
    """
    root = url.rstrip("/")
    return root.removesuffix("/v1").rstrip("/")


def client_for(url: str, config: UpstreamConfig, index: int,
            transport: Transport | None) -> httpx.AsyncClient:
    key = config.key_for(index)
    return httpx.AsyncClient(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"} if key else {},
        timeout=httpx.Timeout(config.request_timeout_s, connect=5.0),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        transport=transport(url) if transport else None)


async def discover_model(config: UpstreamConfig,
                          transport: Transport | None
                          ) -> tuple[dict[str, Any], frozenset[str]]:
    """The upstream model's `/v1/models` entry, from the first upstream that answers, and
    every model id that upstream lists."""
    deadline = time.monotonic() + config.connect_wait_s
    # What each upstream did last, for the error: a status is named, so that a wrong URL
    # (a 404) is not mistaken for a server that is still starting
    last: dict[str, str] = {}
    while True:
        for index, url in enumerate(config.urls):
            async with client_for(url, config, index, transport) as client:
                try:
                    response = await client.get("/v1/models")
                except httpx.TransportError as exc:
                    last[url] = f"{display_url(url)} did not answer ({type(exc).__name__})"
                    continue
            if response.status_code == 200:
                entries = response.json().get("data") or []
                return (choose_model(entries, config.model, url),
                        frozenset(str(e.get("id")) for e in entries))
            last[url] = (f"{display_url(url)}/v1/models answered HTTP {response.status_code}"
                         + (" (not found: give the server's root or its /v1 base URL)"
                            if response.status_code == 404 else ""))
            logger.warning("Upstream %s", last[url])
        if time.monotonic() > deadline:
            raise EngineError(f"no upstream answered /v1/models within "
                              f"{config.connect_wait_s:.0f} s: {'; '.join(last.values())}")
        await asyncio.sleep(1.0)


async def load_tokenizer(source: str, model: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return await asyncio.to_thread(AutoTokenizer.from_pretrained, source)
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot load the tokenizer of {model!r} from {source!r} ({exc}); "
                          "pass --upstream-tokenizer DIR") from exc


def choose_model(entries: list[dict[str, Any]], wanted: str | None, url: str) -> dict[str, Any]:
    """The entry named `wanted`, or the one model listed; a model's aliases (`MODEL:judge`,
    `MODEL:self-critic`, listed beside `MODEL`) are not models of their own.

    >>> choose_model([{"id": "m"}, {"id": "m:judge"}], None, "http://u")["id"]
    'm'
    """
    ids = [e.get("id") for e in entries]
    if wanted is not None:
        for entry in entries:
            if entry.get("id") == wanted:
                return entry
        raise EngineError(f"upstream {display_url(url)} does not serve {wanted!r}; it serves {ids}")
    entries = [e for e in entries if not _is_alias(str(e.get("id")), ids)]
    if len(entries) != 1:
        raise EngineError(f"upstream {display_url(url)} serves {len(entries)} models {ids}; name one "
                          "with --served-model-name")
    return entries[0]


def _is_alias(name: str, ids: list[Any]) -> bool:
    return any(name == f"{base}{suffix}" for base in ids for suffix in ALIAS_SUFFIXES)


async def takes_vllm_extras(upstream: Upstream, model: str, prompt_ids: list[int],
                            choice_ids: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether `upstream` restricts a token to `allowed_token_ids`, reports each of
    `logprob_token_ids` and returns token ids, which exact fast verdicts need; logged."""
    body = completion_body(model, prompt_ids, SamplingOptions(
        max_tokens=1, temperature=0, choices=VERDICT_CHOICES), 1, True, choice_ids)
    response = await upstream.client.post("/v1/completions", json=body)
    wanted = {f"{TOKEN_ID_PREFIX}{i}" for ids in choice_ids.values() for i in ids}
    ok = False
    if response.status_code == 200:
        choice = raw_choice((response.json().get("choices") or [{}])[0])
        tops = (choice.logprobs or {}).get("top_logprobs") or [{}]
        ok = choice.token_ids is not None and wanted <= set(tops[0] or {})
    if ok:
        logger.info("Upstream %s takes vLLM's allowed_token_ids/logprob_token_ids: fast "
                    "verdicts are exact", upstream.name)
    else:
        logger.warning(
            "Upstream %s does not take vLLM's allowed_token_ids/logprob_token_ids/"
            "return_token_ids (HTTP %d): fast verdicts fall back to logit_bias and the few top "
            "logprobs it reports (a verdict missing from them is read from the token), and "
            "streamed token counts are estimated here", upstream.name, response.status_code)
    return ok
