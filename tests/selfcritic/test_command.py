"""The one `selfcritic` parser: every part's subcommands, help everywhere, the `data`
hook, and `bench` from any directory."""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import pytest

from selfcritic import bench, cli

COMMANDS = ("serve", "prepare-model", "critique", "models", "train", "eval", "bench", "data")
EVALS = ("critic", "curve", "policy", "grade", "compare", "make-tasks", "select", "calibrate")


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_part_registers_its_subcommands() -> None:
    commands = _choices(cli.build_parser())
    assert tuple(commands) == COMMANDS
    assert tuple(_choices(commands["eval"])) == EVALS


@pytest.mark.parametrize("argv", [[], *([c] for c in COMMANDS if c != "bench"),
                                  *(["eval", e] for e in EVALS)])
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: selfcritic {' '.join(argv)}".rstrip() in capsys.readouterr().out


def test_bench_help_lists_the_benchmarks_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert str(bench.BENCH_DIR) in out and "serve_throughput" in out
    assert cli.main(["bench", "no_such_benchmark"]) == 2


def test_bench_without_a_checkout_says_where_it_looked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run_bench(["load"], folder=tmp_path / "bench") == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "bench") in err and "checkout" in err


def test_data_group_hangs_the_listed_parts(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "DATA_PARTS", ())
    assert "data" not in _choices(cli.build_parser())  # no part, no empty group
    part = types.ModuleType("fake_pairs_cli")

    def add_parser(subparsers: argparse._SubParsersAction) -> None:
        pairs = subparsers.add_parser("pairs", help="make pairs")
        pairs.add_argument("--n", type=int, default=1)
        pairs.set_defaults(run=lambda args: 7 + args.n)

    part.add_parser = add_parser  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_pairs_cli", part)
    monkeypatch.setattr(cli, "DATA_PARTS", ("fake_pairs_cli",))
    assert cli.main(["data", "pairs", "--n", "2"]) == 9
    with pytest.raises(SystemExit):
        cli.main(["data", "--help"])
    assert "pairs" in capsys.readouterr().out


def test_unknown_arguments_are_errors_except_serves_engine_arguments() -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "make-tasks", "--out", "x", "--tensor-parallel-size", "2"])
    assert exit_info.value.code == 2


def test_python_dash_m_selfcritic_and_no_engine_import_for_help() -> None:
    code = ("import sys, contextlib, io, runpy\nsys.argv = ['selfcritic', '--help']\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    runpy.run_module('selfcritic', run_name='__main__')\n"
            "print(sorted(m for m in ('vllm', 'torch', 'trl', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
