"""Admission as an endpoint meets it: a 503 while the engine is not serving, else the
admission controller's decision (a 429 when the engine cannot take the work now, a 400
for work too large for any moment), each refusal counted by its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from server.edge.errors import APIError
from server.load.admission import AdmissionController
from server.load.capacity import WorkCost

Release = Callable[[], None]
"""Gives an admission back (idempotent)."""


class AdmissionGate:
    def __init__(self, admission: AdmissionController, serving: Callable[[], Awaitable[bool]],
                 rejections: Counter) -> None:
        self.admission = admission
        self._serving = serving
        self._rejections = rejections

    async def admit(self, cost: WorkCost) -> Release:
        """Admission for `cost`; returns the function that releases it."""
        if not await self._serving():
            self._rejections.labels("engine_unavailable").inc()
            raise APIError(503, "The engine is not available; retry later.",
                           code="engine_unavailable", headers={"Retry-After": "5"})
        try:
            return self.admission.acquire(cost)
        except APIError as exc:
            self._rejections.labels(getattr(exc, "reason", "capacity")
                                    if exc.status == 429 else "too_large").inc()
            raise
