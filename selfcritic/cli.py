"""The `selfcritic` command: one parser, every subcommand registered here.

Each part owns its own subcommands and exposes `add_parser(subparsers)`, as TRL's
scripts expose theirs to `trl/cli.py`: `server.cli` (serve, prepare-model, critique,
models), `trainer.cli` (train), `evaluation.cli` (the `eval` group) and
`selfcritic.bench` (bench). This is the one module that imports all of them; they do not
import each other's CLIs. Building the parser imports no engine (vLLM, torch, TRL), so
`selfcritic --help` stays fast.

A `data` group is reserved for data preparation (`selfcritic data pairs ...`): a part
listed in `DATA_PARTS` exposes `add_parser(subparsers)` and is hung under it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

PARTS: tuple[str, ...] = ("server.cli", "trainer.cli", "evaluation.cli", "selfcritic.bench")
"""Modules with `add_parser(subparsers)`, in the order `selfcritic --help` lists them."""

DATA_PARTS: tuple[str, ...] = ("trainer.pairs_cli",)
"""Modules with `add_parser(subparsers)` for `selfcritic data ...`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selfcritic",
        description="Test-time self-critic inference server: best-of-N answers picked by "
                    "the same model judging them pairwise in a knockout.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in PARTS:
        importlib.import_module(name).add_parser(sub)
    if DATA_PARTS:
        data = sub.add_parser("data", help="Prepare training and evaluation data.",
                              description="Prepare training and evaluation data.")
        data_sub = data.add_subparsers(dest="what", metavar="WHAT", required=True)
        for name in DATA_PARTS:
            importlib.import_module(name).add_parser(data_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["serve"]:
        from server.cli import print_serve_help_if_asked

        print_serve_help_if_asked(parser, argv[1:])
    # Our flags first; what they leave is vLLM's engine arguments (serve only)
    args, rest = parser.parse_known_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if rest and not getattr(args, "takes_engine_args", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.engine_args = rest
    level = getattr(args, "cli_log_level", None)
    if level is not None and not logging.getLogger().handlers:  # unless a caller set it up
        from server.logging_setup import configure

        configure(level, False)
    return int(args.run(args) or 0)
