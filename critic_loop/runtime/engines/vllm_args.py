"""vLLM's own engine-argument parser, reused: every `AsyncEngineArgs` flag (parallelism,
executors, quantization, KV cache, prefix caching, speculative decoding, ...) works as on
`vllm serve`, so new vLLM features need no code here. Imported only when vLLM is needed.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import NoReturn

from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.utils.argparse_utils import FlexibleArgumentParser


class EngineArgumentError(ValueError):
    """vLLM's parser (or our reserved-flag check) rejected an engine argument."""


class _EngineArgParser(FlexibleArgumentParser):
    """vLLM's parser, raising instead of exiting, so callers report the error their way."""

    def error(self, message: str) -> NoReturn:
        raise EngineArgumentError(message)


def engine_arg_parser(reserved: Mapping[str, str] | None = None,
                      prog: str = "selfcritic serve") -> FlexibleArgumentParser:
    """vLLM's `AsyncEngineArgs` arguments plus vLLM's `--config FILE.yaml`. `reserved` maps
    destinations that the caller sets itself to the flag that sets them; those are hidden
    from help and refused by `parse_engine_args`."""
    parser = _EngineArgParser(prog=prog, add_help=False,
                              usage=f"{prog} [selfcritic flags] [vLLM engine arguments]")
    AsyncEngineArgs.add_cli_args(parser)
    parser.add_argument("--config", metavar="FILE.yaml",
                        help="A YAML file of vLLM engine arguments (keys as the flags without "
                             "'--'); flags given after it on the command line win.")
    for action in parser._actions:
        if action.dest in (reserved or {}):
            action.help = argparse.SUPPRESS
    return parser


def parse_engine_args(argv: Sequence[str],
                      reserved: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Parse vLLM engine arguments exactly as vLLM does (its messages on errors)."""
    reserved = dict(reserved or {})
    parser = engine_arg_parser(reserved)
    try:
        namespace = parser.parse_args(list(argv))
    except EngineArgumentError:
        raise
    except (ValueError, OSError) as exc:  # e.g. a missing or malformed --config file
        raise EngineArgumentError(str(exc)) from exc
    for dest, flag in reserved.items():
        default = parser.get_default(dest)  # SUPPRESS for some: then absent unless given
        if getattr(namespace, dest, default) != default:
            raise EngineArgumentError(f"'{dest}' is set by selfcritic's own {flag}; pass it "
                                      "there instead of among the vLLM engine arguments.")
    return namespace


def engine_args_from(argv: Sequence[str], ours: Mapping[str, object],
                     defaults: Mapping[str, object]) -> AsyncEngineArgs:
    """`AsyncEngineArgs` from vLLM's command-line arguments: `ours` (fields the caller
    owns, refused among `argv`) set on top, `defaults` filling only what `argv` leaves
    unset."""
    namespace = parse_engine_args(argv, {name: f"EngineConfig.{name}" for name in ours})
    for name, value in defaults.items():
        if getattr(namespace, name, None) is None:
            setattr(namespace, name, value)
    for name, value in ours.items():
        setattr(namespace, name, value)
    return AsyncEngineArgs.from_cli_args(namespace)


def engine_help(keyword: str | None = None, reserved: Mapping[str, str] | None = None) -> str:
    """vLLM's help for its engine arguments: all of them, or those of one config group
    (`ParallelConfig`) or whose flag contains `keyword`, as `vllm serve --help=KEYWORD`."""
    parser = engine_arg_parser(reserved)
    previous = FlexibleArgumentParser._search_keyword
    FlexibleArgumentParser._search_keyword = keyword or "all"
    try:
        return parser.format_help()
    finally:
        FlexibleArgumentParser._search_keyword = previous
