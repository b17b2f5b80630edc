"""The engine's queueing delay, read from vLLM's own `vllm:request_queue_time_seconds`
histogram (same process, same registry) for admission's CoDel-style limit.

Each poll returns a lower bound of the smallest delay since the previous poll: the lower
edge of the lowest bucket that gained a request (None when none did, or with no vLLM).
"""

from __future__ import annotations

import math

from prometheus_client import REGISTRY, CollectorRegistry

QUEUE_TIME = "vllm:request_queue_time_seconds"


class QueueDelayProbe:
    def __init__(self, registry: CollectorRegistry = REGISTRY, name: str = QUEUE_TIME) -> None:
        self.registry = registry
        self.name = name
        self._last: dict[float, float] = self._buckets() or {}

    def __call__(self) -> float | None:
        buckets = self._buckets()
        if buckets is None:
            return None
        grew = [le for le, count in buckets.items() if count > self._last.get(le, 0.0)]
        self._last = buckets
        if not grew:
            return None
        lowest = min(grew)
        below = [le for le in buckets if le < lowest]
        return max(below, default=0.0)

    def _buckets(self) -> dict[float, float] | None:
        """Cumulative bucket counts by upper edge, summed over label sets."""
        collector = self.registry._names_to_collectors.get(self.name)
        if collector is None:
            return None
        counts: dict[float, float] = {}
        for metric in collector.collect():
            for sample in metric.samples:
                if sample.name.endswith("_bucket"):
                    le = float(sample.labels.get("le", "inf"))
                    if math.isfinite(le):
                        counts[le] = counts.get(le, 0.0) + sample.value
        return counts
