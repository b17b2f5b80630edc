"""The `selfcritic` command line: help everywhere, flags and environment twins."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from server.cli import (
    build_parser,
    check_engine_args,
    main,
    reserved_engine_flags,
    settings_from_args,
)
from server.edge.middleware import RequestIdFilter, request_id_var
from server.logging_setup import JsonFormatter


@pytest.mark.parametrize("argv", [[], ["serve"], ["critique"], ["models"],
                                  ["prepare-model"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: selfcritic" in capsys.readouterr().out


def test_serve_help_names_every_env_twin(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for env in ("SELFCRITIC_MODEL", "SELFCRITIC_API_KEY", "SELFCRITIC_MAX_INFLIGHT_SEQUENCES",
                "SELFCRITIC_JUDGE"):
        assert env in out


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFCRITIC_PORT", "9100")
    monkeypatch.setenv("SELFCRITIC_JUDGE", "reason")
    monkeypatch.setenv("SELFCRITIC_API_KEY", "a,b")
    args = build_parser().parse_args(["serve", "--port", "9200", "--enforce-eager"])
    settings = settings_from_args(args)
    assert settings.port == 9200 and settings.judge == "reason"
    assert settings.enforce_eager is True and settings.api_key == ["a", "b"]


def test_invalid_settings_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--candidates", "99", "--max-candidates", "8"]) == 2
    assert "candidates" in capsys.readouterr().err


def test_bad_flag_value_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--judge", "oracle"])
    assert exit_info.value.code == 2


def test_json_logs_carry_the_request_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    token = request_id_var.set("req-7")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello you" and line["request_id"] == "req-7"


# -- vLLM engine arguments: vLLM's own parser, after ours ---------------------------------
def _serve_settings(argv: list[str]):
    args, engine_args = build_parser().parse_known_args(["serve", *argv])
    args.engine_args = engine_args
    return settings_from_args(args)


def test_other_arguments_are_vllm_engine_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFCRITIC_VLLM_ARGS", "--tensor-parallel-size 1 --quantization fp8")
    settings = _serve_settings(["--seed", "3", "--no-enable-prefix-caching", "--port", "9",
                                "--max-num-batched-tokens=4096", "-tp", "1"])
    assert settings.seed == 3 and settings.port == 9  # ours, wherever they stand
    # the environment's first, the command line's after them (so they win)
    assert settings.vllm_args == ["--tensor-parallel-size", "1", "--quantization", "fp8",
                                  "--no-enable-prefix-caching", "--max-num-batched-tokens=4096",
                                  "-tp", "1"]
    from critic_loop.engines.vllm_args import parse_engine_args

    parsed = parse_engine_args(settings.vllm_args, reserved_engine_flags())
    assert parsed.enable_prefix_caching is False and parsed.max_num_batched_tokens == 4096
    assert parsed.quantization == "fp8" and parsed.tensor_parallel_size == 1


def test_vllm_config_file(tmp_path) -> None:
    config = tmp_path / "engine.yaml"
    config.write_text("max-num-batched-tokens: 3072\nenable-prefix-caching: false\n")
    settings = _serve_settings(["--config", str(config), "--max-num-batched-tokens", "5000"])
    assert check_engine_args(settings) is None
    from critic_loop.engines.vllm_args import parse_engine_args

    parsed = parse_engine_args(settings.vllm_args)
    assert parsed.enable_prefix_caching is False
    assert parsed.max_num_batched_tokens == 5000  # the command line wins over the file


def test_bad_engine_argument_gets_vllms_message(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def no_serving(settings: object) -> int:
        raise AssertionError("the bad argument reached the server")

    monkeypatch.setattr("server.runner.serve", no_serving)
    assert main(["serve", "--kv-cache-dtype", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "argument --kv-cache-dtype: invalid choice: 'bogus'" in err
    assert main(["serve", "--no-such-engine-flag", "1"]) == 2
    assert "unrecognized arguments: --no-such-engine-flag 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--max_num_seqs", "3"],  # vLLM's underscore spelling
                                  ["--device-memory-utilization", "0.5"]])  # vLLM's alias
def test_our_settings_cannot_be_set_behind_our_back(argv: list[str]) -> None:
    problem = check_engine_args(_serve_settings(argv))
    assert problem is not None and "selfcritic's own --" in problem


def test_unknown_arguments_of_other_commands_are_errors() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare-model", "--tensor-parallel-size", "2"])
    assert exit_info.value.code == 2


def test_serve_help_shows_ours_then_vllms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    ours, _, engine = out.partition("vLLM engine arguments (vLLM's own parser")
    assert "--candidates" in ours and "SELFCRITIC_VLLM_ARGS" in ours
    for flag in ("--tensor-parallel-size", "--distributed-executor-backend", "--quantization",
                 "--kv-cache-dtype", "--enable-prefix-caching", "--speculative-config",
                 "--config FILE.yaml"):
        assert flag in engine
    assert "\n  --seed" not in engine and "\n  --dtype" not in engine  # ours, shown once
    with pytest.raises(SystemExit):
        main(["serve", "--help=ParallelConfig"])
    engine = capsys.readouterr().out.partition("vLLM engine arguments")[2]
    assert "--tensor-parallel-size" in engine and "--max-num-batched-tokens" not in engine


def test_top_level_help_does_not_import_vllm() -> None:
    code = ("import sys, contextlib, io\nfrom server.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])\nprint('vllm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_engine_arguments_with_upstream_are_refused() -> None:
    problem = check_engine_args(_serve_settings(["--upstream", "http://127.0.0.1:9",
                                                 "--tensor-parallel-size", "2"]))
    assert problem is not None and "--upstream" in problem
