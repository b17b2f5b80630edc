"""In-process mode: the server is started on a loopback port it binds itself, waited for,
used and always stopped; a server that dies at start is an error with its log."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from evaluation import local_server as local_server_module
from evaluation.local_server import BOUND, free_port, launch, local_server, serve_command
from evaluation.policy import PolicyEvalConfig, evaluate_policy

TINY = Path(__file__).resolve().parents[1] / "support" / "tiny_openai_server.py"


def test_serve_command_is_eager_on_loopback() -> None:
    argv = serve_command("default", 7, 32, ["--dtype", "float32"])
    assert argv[1:4] == ["-m", "selfcritic", "serve"]
    for flag, value in (("--model", "default"), ("--host", "127.0.0.1"), ("--port", "0"),
                        ("--seed", "7"), ("--max-candidates", "32"), ("--max-n", "32")):
        assert argv[argv.index(flag) + 1] == value
    assert "--enforce-eager" in argv and argv[-2:] == ["--dtype", "float32"]


def _listening(url: str) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", urlsplit(url).port or 80)) == 0


def tiny_command(*args: object, **kwargs: object) -> list[str]:
    """The stand-in server, on a port it binds itself as `selfcritic serve --port 0` does."""
    return [sys.executable, str(TINY), "0"]


def test_eval_in_process_starts_and_stops_the_server(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_server_module, "serve_command", tiny_command)
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "2+2?", "answer": "4", "grader": "numeric"}) + "\n")
    result = evaluate_policy(PolicyEvalConfig(
        data=data, output=tmp_path / "out", model="default", ns=(2,), progress=False,
        strategies=("greedy", "majority", "self-critic-fast")))
    rows = {r.strategy: r for r in result.rows}
    assert rows["greedy"].accuracy == 1 and rows["majority"].accuracy == 1
    assert rows["self-critic-fast"].unavailable  # the stand-in has no self-critic
    log = (tmp_path / "out" / "server.log").read_text()
    assert not _listening(BOUND.search(log).group(1))  # stopped


def test_a_server_that_dies_at_start_is_reported(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_server_module, "serve_command", lambda *a, **k: [
        sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"])
    with (pytest.raises(RuntimeError, match=r"exited with 3(.|\n)*no model here"),
          local_server("nowhere", tmp_path / "server.log")):
        pass


def test_stopped_even_when_the_run_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urls: list[str] = []
    monkeypatch.setattr(local_server_module, "serve_command", tiny_command)
    with pytest.raises(KeyError), local_server("default", tmp_path / "server.log") as url:
        urls.append(url)
        assert _listening(url)
        raise KeyError("the run failed")
    assert not _listening(urls[0])


def test_launch_stops_the_whole_process_group(tmp_path: Path) -> None:
    """A server told its port (`url=`) is waited for on `health_path`, and `stop` ends its
    children too (as vLLM's engine processes are the server's)."""
    psutil = pytest.importorskip("psutil")

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    port = free_port()
    child = tmp_path / "child.pid"
    code = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
            f"'import time; time.sleep(600)']); open({str(child)!r}, 'w').write(str(p.pid)); "
            f"sys.argv = ['tiny', '{port}']; exec(open({str(TINY)!r}).read())")
    server = launch([sys.executable, "-c", code], tmp_path / "server.log",
                    url=f"http://127.0.0.1:{port}", name="tiny", start_timeout_s=60,
                    health_path="/v1/models")
    grandchild = int(child.read_text())
    assert _listening(server.url) and alive(grandchild)
    assert server.stop() is not None and not _listening(server.url)
    psutil.wait_procs([psutil.Process(grandchild)] if alive(grandchild) else [], timeout=30)
    assert not alive(grandchild)
