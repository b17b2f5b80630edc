"""The sandbox against hostile programs: each is contained, and marked failed or timed out."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from critic_loop.code.sandbox import Limits, Sandbox, SandboxUnavailable

TIERS = ("bwrap", "unshare")
FAST = Limits(wall_s=5.0, cpu_s=3)


def _only(tier: str) -> Sandbox:
    """A sandbox that may use `tier` alone (probed for real)."""
    probe_with = Sandbox(FAST)
    return Sandbox(FAST, probe=lambda t: t == tier and probe_with._probe_run(t))


@pytest.fixture(params=TIERS)
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    box = _only(request.param)
    try:
        assert box.isolation == request.param
    except SandboxUnavailable:
        pytest.skip(f"{request.param} does not work on this machine")
    yield box


def test_a_plain_program_passes_with_an_empty_environment(sandbox: Sandbox) -> None:
    result = sandbox.run("import os, sys\nprint(sorted(os.environ), os.getcwd() == "
                         "os.environ['HOME'], [p for p in sys.path if 'site-packages' in p])")
    assert result.passed and result.exit_code == 0, result
    assert result.stdout.strip() == "['HOME', 'LANG', 'PATH'] True []"


def test_an_exception_fails_with_its_last_line_as_the_reason(sandbox: Sandbox) -> None:
    result = sandbox.run("def f():\n    raise ValueError('bad input')\nf()\n")
    assert result.status == "failed" and result.exit_code == 1
    assert result.reason == "ValueError: bad input"


def test_an_infinite_loop_times_out(sandbox: Sandbox) -> None:
    result = sandbox.run("while True:\n    pass\n", Limits(wall_s=2.0, cpu_s=30))
    assert result.status == "timed_out" and result.exit_code is None


def test_a_cpu_burner_hits_the_cpu_limit(sandbox: Sandbox) -> None:
    result = sandbox.run("while True:\n    pass\n", Limits(wall_s=60.0, cpu_s=1))
    assert result.status == "timed_out" and "CPU" in result.reason, result


def _processes_of(uids: range) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue
        if uid in uids:
            found.append(int(pid))
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="uid slots apply when the grader runs as root")
def test_a_fork_bomb_is_bounded_and_leaves_nothing_behind(sandbox: Sandbox) -> None:
    bomb = ("import os\nforks = 0\nwhile True:\n    try:\n        os.fork()\n        forks += 1\n"
            "    except OSError:\n        pass\n")
    result = sandbox.run(bomb, Limits(wall_s=3.0, cpu_s=2, processes=8))
    assert result.status in ("failed", "timed_out")
    assert _processes_of(sandbox.uids) == []


def test_writing_outside_its_directory_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    result = sandbox.run(f"open({str(target)!r}, 'w').write('pwned')\n")
    assert result.status == "failed"
    assert not target.exists()


def test_deleting_files_outside_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    result = sandbox.run(f"import os, shutil\nos.remove({str(keep)!r})\n")
    assert result.status == "failed"
    assert keep.read_text() == "precious"


def test_no_network_to_a_local_listener(sandbox: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = sandbox.run("import socket\ns = socket.create_connection(('127.0.0.1', "
                             f"{port}), timeout=2)\ns.sendall(b'stolen')\n")
        assert result.status == "failed"
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_the_graders_environment_stays_secret(sandbox: Sandbox,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-5ecret-value"
    monkeypatch.setenv("SELFCRITIC_TEST_SECRET", secret)
    thief = ("import os, sys\nfound = [v for v in os.environ.values() if 'sk-test' in v]\n"
             "for pid in os.listdir('/proc'):\n"
             "    try:\n        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
             "    except OSError:\n        continue\n"
             "    if b'sk-test' in data:\n        found.append(data.decode(errors='replace'))\n"
             "print(found)\nsys.exit(0 if found else 1)\n")
    result = sandbox.run(thief)
    assert result.status == "failed" and secret not in result.stdout
    assert result.stdout.strip() == "[]"


def test_megabytes_of_output_are_capped(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys\nwhile True:\n    sys.stdout.write('x' * 1_000_000)\n",
                         Limits(wall_s=30.0, output_bytes=100_000))
    assert result.status == "failed" and result.truncated
    assert len(result.stdout) == 100_000 and "output limit" in result.reason


def test_no_sandbox_means_refusal_unless_allowed() -> None:
    with pytest.raises(SandboxUnavailable, match="--allow-unsandboxed-exec"):
        Sandbox(FAST, probe=lambda tier: False).run("print(1)")
    loose = Sandbox(FAST, allow_unsandboxed=True, probe=lambda tier: False)
    assert loose.isolation == "none"
    result = loose.run("print(6 * 7)")
    assert result.passed and result.stdout == "42\n" and result.isolation == "none"


def test_the_probe_runs_once_per_sandbox() -> None:
    asked: list[str] = []
    box = Sandbox(FAST, allow_unsandboxed=True, probe=lambda tier: asked.append(tier) or False)
    box.run("pass")
    box.run("pass")
    assert asked == [t for t in TIERS if __import__("shutil").which(t)]


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="wall_s"):
        Limits(wall_s=0)
