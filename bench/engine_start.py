"""How long `VLLMEngine.start` plus warm-up takes, compiled or eager, start after start.

Each repeat starts the default model's engine in this process, warms it up, and closes
it; a compiled start on a CPU reuses the previous start's inductor cache
(`critic_loop/engines/compile_cache.py`), so the first repeat on a machine shows the
cold cost and the later ones the warm one. Run it alone: starts are CPU-bound.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/engine_start.py --repeats 2
    HF_HUB_OFFLINE=1 .venv/bin/python bench/engine_start.py --eager
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, setup_logging  # bench/ is not a package: its folder is on sys.path

logger = logging.getLogger("bench.engine_start")


async def start_once(eager: bool) -> tuple[float, float]:
    """Seconds to start the engine, and to warm it up."""
    from critic_loop.engines.vllm_async import EngineConfig, VLLMEngine
    from critic_loop.model_store import resolve_model

    model = resolve_model("default")
    started = time.monotonic()
    engine = VLLMEngine.start(EngineConfig(model=str(model.path), served_name=model.served_name,
                                           enforce_eager=eager))
    ready = time.monotonic()
    await engine.warm_up()
    warm = time.monotonic()
    await engine.close()
    return ready - started, warm - ready


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--eager", action="store_true", help="Eager (default: compiled).")
    parser.add_argument("--repeats", type=int, default=2, help="Starts, one after another.")
    args = parser.parse_args(argv)
    setup_logging()
    logger.info("machine: %s", machine())
    for i in range(args.repeats):
        start_s, warm_s = asyncio.run(start_once(args.eager))
        logger.info("start %d (%s): %.1f s to start, %.1f s to warm up", i + 1,
                    "eager" if args.eager else "compiled", start_s, warm_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
