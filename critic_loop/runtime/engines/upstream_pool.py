"""A pool of upstream servers: which one takes a call, and which ones are out.

A call goes to the upstream its request already uses (so that upstream's prefix cache
holds the candidates a judge prompt repeats); a new request goes to the admitted upstream
with the fewest calls outstanding. A failing upstream is ejected and probed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from critic_loop.engine import EngineError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Upstream:
    """One server and what the pool knows about it. The key is never printed."""

    index: int
    url: str
    client: Any = field(repr=False)
    """An `httpx.AsyncClient` with the base URL and the key's header set."""
    admitted: bool = False
    outstanding: int = 0
    vllm_extras: bool = False
    """Accepts vLLM's `allowed_token_ids`, `logprob_token_ids`, `return_token_ids`."""
    last_pick: int = 0

    @property
    def name(self) -> str:
        return display_url(self.url)


def display_url(url: str) -> str:
    """The URL without any user:password part, fit for logs."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


class UpstreamPool:
    """Least-outstanding choice with per-request affinity, ejection and probing back."""

    def __init__(self, upstreams: Sequence[Upstream],
                 probe: Callable[[Upstream], Awaitable[bool]],
                 probe_interval_s: float = 2.0, affinity_size: int = 4096) -> None:
        self.upstreams = list(upstreams)
        self._probe = probe
        self.probe_interval_s = probe_interval_s
        self._affinity: OrderedDict[str, Upstream] = OrderedDict()
        self._affinity_size = affinity_size
        self._picks = itertools.count(1)
        self._prober: asyncio.Task[None] | None = None

    def any_admitted(self) -> bool:
        return any(u.admitted for u in self.upstreams)

    def pick(self, key: str | None, exclude: Upstream | None = None) -> Upstream:
        """The upstream for a call of request `key` (None: no affinity)."""
        held = self._affinity.get(key) if key is not None else None
        if held is not None and held.admitted and held is not exclude:
            self._affinity.move_to_end(key)  # type: ignore[arg-type]
            return held
        candidates = [u for u in self.upstreams if u.admitted and u is not exclude]
        if not candidates:
            raise EngineError("no upstream server is available; "
                              f"{len(self.upstreams)} configured, all ejected")
        chosen = min(candidates, key=lambda u: (u.outstanding, u.last_pick))
        chosen.last_pick = next(self._picks)
        if key is not None:
            self._affinity[key] = chosen
            self._affinity.move_to_end(key)
            while len(self._affinity) > self._affinity_size:
                self._affinity.popitem(last=False)
        return chosen

    @contextlib.contextmanager
    def lease(self, upstream: Upstream) -> Iterator[Upstream]:
        """Count a call as outstanding on `upstream` while it runs."""
        upstream.outstanding += 1
        try:
            yield upstream
        finally:
            upstream.outstanding -= 1

    def eject(self, upstream: Upstream, reason: str) -> None:
        if upstream.admitted:
            upstream.admitted = False
            logger.warning("Upstream %s ejected (%s); probing it every %g s",
                           upstream.name, reason, self.probe_interval_s)

    def admit(self, upstream: Upstream, readmitted: bool = True) -> None:
        if not upstream.admitted:
            upstream.admitted = True
            logger.info("Upstream %s %s (%d of %d admitted)", upstream.name,
                        "readmitted" if readmitted else "admitted",
                        sum(u.admitted for u in self.upstreams), len(self.upstreams))

    def start_probing(self) -> None:
        self._prober = asyncio.create_task(self._probe_forever())

    async def stop_probing(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval_s)
            for upstream in [u for u in self.upstreams if not u.admitted]:
                try:
                    healthy = await self._probe(upstream)
                except Exception:  # a probe's own failure only means "not yet"
                    logger.debug("probe of %s failed", upstream.name, exc_info=True)
                    healthy = False
                if healthy:
                    self.admit(upstream)
