"""`selfcritic bench NAME [ARGS]`: run a benchmark script from the repository's bench/.

The benchmarks are scripts beside the packages in a checkout, not part of the installed
package: bench/ is found next to this package, so the command works from any directory
of a checkout (or an editable install), and says so plainly where bench/ is absent (an
installed wheel).
"""

from __future__ import annotations

import argparse
import logging
import runpy
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def add_parser(subparsers: Any) -> None:
    """`selfcritic bench`: everything after NAME goes to the benchmark's own parser."""
    bench = subparsers.add_parser(
        "bench", help="Run a benchmark from bench/ (see bench/README.md).", add_help=False)
    bench.add_argument("-h", "--help", action="store_true", dest="bench_help",
                       help="list the benchmarks")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(run=_run, cli_log_level="info")


def _run(args: argparse.Namespace) -> int:
    return run_bench(["--help", *args.rest] if args.bench_help else args.rest)


def run_bench(argv: list[str], folder: Path = BENCH_DIR) -> int:
    if not folder.is_dir():
        sys.stderr.write(f"selfcritic bench: no benchmarks at {folder}: they ship with the "
                         "repository, not the installed package; run from a checkout "
                         "(pip install -e .)\n")
        return 2
    scripts = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in scripts:
        sys.stdout.write(f"usage: selfcritic bench NAME [ARGS]\nbenchmarks in {folder}: "
                         f"{', '.join(scripts)}\n'selfcritic bench NAME --help' describes "
                         "one.\n")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    sys.argv = [str(folder / f"{argv[0]}.py"), *argv[1:]]
    if str(folder) not in sys.path:  # bench/ is not a package: its scripts import _common
        sys.path.insert(0, str(folder))
    runpy.run_path(sys.argv[0], run_name="__main__")
    return 0
