"""The `selfcritic` command line: help everywhere, flags and environment twins."""

from __future__ import annotations

import json
import logging

import pytest

from server.cli import build_parser, main, settings_from_args
from server.logging_setup import JsonFormatter
from server.request_context import RequestIdFilter, request_id_var


@pytest.mark.parametrize("argv", [[], ["serve"], ["critique"], ["prepare-model"]])
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
