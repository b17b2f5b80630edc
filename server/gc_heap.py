"""Freeze the start-up heap, as vLLM's own server does: torch, transformers and vLLM leave
~600k objects that a full garbage collection would walk (~0.4 s each time on a CPU,
stalling every request); frozen, collections walk only what serving allocates."""

from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect what start-up left as garbage, then move every surviving object to the
    permanent generation, which collections skip. Returns how many objects were frozen."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("Froze %d start-up objects out of garbage collection (%.0f ms)", frozen,
                1000 * (time.perf_counter() - started))
    return frozen
