"""The `selfcritic` command: serve, critique, models, prepare-model, train, eval, bench.

Every `serve` flag is generated from `ServerSettings`, so each has its `SELFCRITIC_`
environment twin and the same help text. Flags win over the environment. Any other
`serve` argument is a vLLM engine argument, parsed by vLLM's own parser (imported only
then, so `selfcritic --help` stays fast).
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

from server.settings import ServerSettings

logger = logging.getLogger("selfcritic")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["train"], ["eval"]):  # their own parsers, --help included
        return _run_trainer(argparse.Namespace(command=argv[0], rest=argv[1:]))
    parser = build_parser()
    if argv[:1] == ["serve"] and (keyword := _help_keyword(argv[1:])) is not None:
        sys.stdout.write(serve_help(parser, keyword))
        raise SystemExit(0)
    # Our flags first; what they leave is vLLM's engine arguments (serve only)
    args, engine_args = parser.parse_known_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if engine_args and args.command != "serve":
        parser.error(f"unrecognized arguments: {' '.join(engine_args)}")
    args.engine_args = engine_args
    return int(args.run(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selfcritic",
        description="Test-time self-critic inference server: best-of-N answers picked by "
                    "the same model judging them pairwise in a knockout.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="Serve the OpenAI-compatible API.", allow_abbrev=False,
        description="Serve the OpenAI-compatible API. Each selfcritic flag can also be set as "
                    "SELFCRITIC_<FLAG> in the environment. Every other argument is a vLLM "
                    "engine argument (listed after ours; SELFCRITIC_VLLM_ARGS holds more). "
                    "Where both have a flag (--model, --dtype, --seed, --max-model-len, ...), "
                    "selfcritic's is the one used, and it is passed on to vLLM.")
    add_settings_flags(serve, ServerSettings)
    serve.set_defaults(run=_run_serve)

    prepare = sub.add_parser("prepare-model", help="Build a built-in model's directory "
                             "(or check a local one) and print its path.")
    prepare.add_argument("--model", default="default", help="A built-in model ('default', "
                         "or a name `selfcritic models` lists) or a local directory.")
    prepare.set_defaults(run=_run_prepare)

    from server.critique_cli import add_critique_parser
    from server.models_cli import add_models_parser

    add_critique_parser(sub)
    add_models_parser(sub)
    from trainer.pairs_cli import add_parser as add_data_parser

    add_data_parser(sub)  # `selfcritic data pairs`

    for name, summary in (("train", "Train a critic with GRPO from a YAML recipe."),
                          ("eval", "Evaluate a critic on preference pairs, or answer "
                                   "strategies on verifiable questions (eval policy).")):
        passthrough = sub.add_parser(name, help=summary, add_help=False)
        passthrough.add_argument("rest", nargs=argparse.REMAINDER)
        passthrough.set_defaults(run=_run_trainer)

    bench = sub.add_parser("bench", help="Run a benchmark from bench/ (see bench/README.md).",
                           add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(run=_run_bench)
    return parser


def add_settings_flags(parser: argparse.ArgumentParser, settings: type[ServerSettings]) -> None:
    """One `--kebab-name` flag per settings field; unset flags fall back to env/defaults."""
    for name, field in settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = "SELFCRITIC_" + name.upper()
        default = field.get_default(call_default_factory=True)
        help_text = f"{field.description or ''} [env {env}; default {default!r}]"
        kind = _base_type(field.annotation)
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": help_text}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(kind))
        elif kind in (int, float):
            kwargs["type"] = kind
        parser.add_argument(flag, **kwargs)


def _base_type(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """Settings from flags, then the environment; vLLM engine arguments from the command
    line come after those of `--vllm-args`/`SELFCRITIC_VLLM_ARGS`, so they win."""
    given = {k: v for k, v in vars(args).items()
             if k in ServerSettings.model_fields and v is not None}
    settings = ServerSettings(**given)
    engine_args = list(getattr(args, "engine_args", None) or [])
    if engine_args:
        settings = settings.model_copy(update={"vllm_args": [*settings.vllm_args, *engine_args]})
    return settings


def reserved_engine_flags() -> dict[str, str]:
    """Our settings by name, with their flags: vLLM arguments of the same name are ours."""
    return {name: "--" + name.replace("_", "-") for name in ServerSettings.model_fields}


def check_engine_args(settings: ServerSettings) -> str | None:
    """vLLM's own message if its parser rejects the engine arguments, else None."""
    if not settings.vllm_args:
        return None
    if settings.upstream:
        return ("vLLM engine arguments configure the engine in this process, and with "
                f"--upstream none runs here: {' '.join(settings.vllm_args)}")
    from critic_loop.engines.vllm_args import EngineArgumentError, parse_engine_args

    try:
        parse_engine_args(settings.vllm_args, reserved_engine_flags())
    except EngineArgumentError as exc:
        return str(exc)
    return None


def serve_help(parser: argparse.ArgumentParser, keyword: str = "") -> str:
    """Our serve flags, then vLLM's engine arguments (all, or those matching `keyword`:
    a config group such as ParallelConfig, or part of a flag, as `vllm serve --help=`)."""
    from critic_loop.engines.vllm_args import engine_help

    ours = _subparser(parser, "serve").format_help()
    engine = engine_help(keyword or None, reserved_engine_flags())
    return (f"{ours}\nvLLM engine arguments (vLLM's own parser; 'selfcritic serve "
            f"--help=KEYWORD' shows a config group or the flags containing KEYWORD):\n\n"
            f"{engine}")


def _help_keyword(argv: Sequence[str]) -> str | None:
    """'' for -h/--help, 'KEYWORD' for --help=KEYWORD, None when no help is asked for."""
    for arg in argv:
        if arg in ("-h", "--help"):
            return ""
        if arg.startswith("--help="):
            return arg.split("=", 1)[1]
    return None


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def configure_logging(level: str = "info", json_lines: bool = False) -> None:
    from server.logging_setup import configure

    configure(level, json_lines)


def _run_serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        sys.stderr.write(f"selfcritic serve: invalid settings:\n{exc}\n")
        return 2
    if (problem := check_engine_args(settings)) is not None:
        sys.stderr.write(f"selfcritic serve: invalid vLLM engine argument: {problem}\n")
        return 2
    configure_logging(settings.log_level, settings.log_json)
    from server.runner import serve

    return serve(settings)


def _run_prepare(args: argparse.Namespace) -> int:
    configure_logging()
    from critic_loop.model_store import resolve_model

    try:
        model = resolve_model(args.model)
    except FileNotFoundError as exc:
        logger.error("%s", exc)
        return 1
    sys.stdout.write(f"{model.path}\n")
    return 0


def _run_trainer(args: argparse.Namespace) -> int:
    configure_logging()
    try:
        from trainer import cli as trainer_cli
    except ImportError as exc:
        logger.error("Training needs the train extra: pip install 'selfcritic[train]' (%s)", exc)
        return 1
    entry = trainer_cli.train_main if args.command == "train" else trainer_cli.eval_main
    return int(entry(args.rest) or 0)


def _run_bench(args: argparse.Namespace) -> int:
    configure_logging()
    from server.bench_cli import run_bench

    return run_bench(args.rest)


if __name__ == "__main__":
    sys.exit(main())
