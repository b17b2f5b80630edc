"""Start-up objects are frozen out of garbage collection, so a full collection while
serving walks only what serving allocated."""

from __future__ import annotations

import gc

from server.gc_heap import freeze_startup_heap


def test_freezing_moves_survivors_out_of_collection() -> None:
    survivors = [[i] for i in range(1000)]  # tracked containers that outlive start-up
    try:
        frozen = freeze_startup_heap()
        # other threads may free a frozen object meanwhile: the count can only fall
        assert frozen >= gc.get_freeze_count() >= len(survivors)
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(s) in tracked for s in survivors)  # no longer walked by gc
    finally:
        gc.unfreeze()
    assert any(id(s) in {id(o) for o in gc.get_objects()} for s in survivors)
