"""`selfcritic bench NAME [ARGS]`: run a benchmark script from the repository's bench/."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def run_bench(argv: list[str]) -> int:
    folder = Path.cwd() / "bench"
    scripts = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in scripts:
        listing = ", ".join(scripts) or "(none: run from the repository root)"
        sys.stdout.write(f"usage: selfcritic bench NAME [ARGS]\nbenchmarks in {folder}: "
                         f"{listing}\n'selfcritic bench NAME --help' describes one.\n")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    sys.argv = [str(folder / f"{argv[0]}.py"), *argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
    return 0
