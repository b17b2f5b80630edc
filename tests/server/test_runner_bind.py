"""The server binds its port before the engine starts: a busy port fails at once, with a
clear message and without loading a model, and port 0 takes a free port it logs."""

from __future__ import annotations

import logging
import socket

import pytest

from server import runner
from server.settings import ServerSettings


def test_the_listener_holds_its_port_from_the_start() -> None:
    listener = runner.bind_listener("127.0.0.1", 0)
    try:
        port = listener.getsockname()[1]
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # listening already: a client waits in the backlog, it is not refused
        with pytest.raises(OSError):
            runner.bind_listener("127.0.0.1", port)
        assert not listener.get_inheritable()  # the engine's processes do not hold it
    finally:
        listener.close()


def test_a_busy_port_fails_before_the_engine_starts(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def no_app(*args: object, **kwargs: object) -> None:
        raise AssertionError("the app (and its engine) must not be built")

    monkeypatch.setattr(runner, "create_app", no_app)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="server.runner"):
            code = runner.serve(ServerSettings(host="127.0.0.1", port=port))
    finally:
        busy.close()
    assert code == runner.EXIT_BAD_CONFIG
    assert f"Cannot listen on 127.0.0.1 port {port}" in caplog.text
