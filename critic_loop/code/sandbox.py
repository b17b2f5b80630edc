"""Runs one untrusted Python program under limits, with no network and no writes outside its dir.

Every graded program is model-written, so each runs in its own process in a fresh temporary
directory that is also its HOME, with an empty environment and rlimits (CPU, memory, file
size, processes) set by a small shim before it execs the program; a wall-clock deadline
kills the whole process tree. Confinement, best first: bubblewrap (new pid, net, ipc and uts
namespaces; only the interpreter and system libraries visible, read-only), else `unshare`
namespaces (pid, net, ipc, mount; file writes bounded only by the unprivileged uid), else
nothing, which runs only when the caller allows it explicitly. Which one works is found by a
probe run, once per `Sandbox` object.

As root, RLIMIT_NPROC never applies (the kernel exempts uid 0), so the program runs as a
uid of its own: one per concurrent slot, so that one program's processes cannot use up
another's budget.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

logger = logging.getLogger(__name__)

ISOLATIONS = ("bwrap", "unshare", "none")
"""Confinement tiers, best first. 'none' runs only with `allow_unsandboxed=True`."""
STATUSES = ("passed", "failed", "timed_out")
SANDBOX_DIR = "/sandbox"
"""Where the program's directory appears inside bubblewrap (its cwd and HOME)."""
UID_BASE = 1_800_000
MAX_PARALLEL = 64
"""Running as root, each Sandbox draws a block of MAX_PARALLEL uids above UID_BASE (no
account needed) and slot i runs programs as the block's uid i, so that two sandboxes
(two graders on one machine) neither share a process budget nor kill each other's
leftovers."""
PROGRAM = "main.py"

# Runs inside the confinement, before the program: limits, then the uid drop, then exec.
# Limits are set here rather than in a preexec_fn, which is unsafe in a threaded grader.
SHIM = """\
import os, resource, sys
cpu, memory, fsize, nproc, uid = (int(v) for v in sys.argv[1:6])
def cap(which, soft, hard=None):
    resource.setrlimit(which, (soft, soft if hard is None else hard))
cap(resource.RLIMIT_CPU, cpu, cpu + 1)
cap(resource.RLIMIT_AS, memory)
cap(resource.RLIMIT_FSIZE, fsize)
cap(resource.RLIMIT_CORE, 0)
if uid >= 0:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
cap(resource.RLIMIT_NPROC, nproc)
os.environ.pop("PWD", None)  # bubblewrap's --chdir sets it
os.execv(sys.argv[6], sys.argv[6:])
"""


class SandboxUnavailable(RuntimeError):
    """No confinement works here and unconfined execution was not allowed."""


@dataclass(frozen=True)
class Limits:
    """What one program may use. Wall time is enforced by killing its whole tree."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 512 << 20
    """Address space (RLIMIT_AS) per process."""
    file_bytes: int = 16 << 20
    """Largest file it may write (RLIMIT_FSIZE)."""
    processes: int = 8
    """Processes and threads of its uid (RLIMIT_NPROC), the program included."""
    output_bytes: int = 256 << 10
    """Per stream; past it the program is killed and fails."""
    tmp_bytes: int = 64 << 20
    """bubblewrap: size of its private /tmp."""

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_bytes", "file_bytes", "processes",
                     "output_bytes", "tmp_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"sandbox limit {name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Execution:
    """How one program run ended. `reason` is a short cause when it did not pass."""

    status: str
    """'passed' (exit 0), 'failed' or 'timed_out' (wall or CPU limit)."""
    exit_code: int | None
    """Its exit status; negative: killed by that signal; None: killed at the deadline."""
    stdout: str
    stderr: str
    duration_s: float
    isolation: str
    truncated: bool = False
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


Probe = Callable[[str], bool]
"""`(isolation) -> works`: the default runs a tiny program under that isolation."""


class Sandbox:
    """Runs programs under `limits`, at most `max_parallel` at once (callers block beyond)."""

    def __init__(self, limits: Limits | None = None, *, allow_unsandboxed: bool = False,
                 max_parallel: int = 4, python: str | None = None, probe: Probe | None = None
                 ) -> None:
        if not 1 <= max_parallel <= MAX_PARALLEL:
            raise ValueError(f"max_parallel must be in 1..{MAX_PARALLEL}, got {max_parallel}")
        self.limits = limits or Limits()
        self.allow_unsandboxed = allow_unsandboxed
        self.max_parallel = max_parallel
        # The base interpreter, not the venv's: with -I -S it sees only the standard library.
        self.python = python or os.path.realpath(sys.executable)
        self._prefix = os.path.realpath(sys.base_prefix)
        self._probe = probe or self._probe_run
        self._root = os.geteuid() == 0
        first = UID_BASE + secrets.randbelow(1 << 20) * MAX_PARALLEL
        self.uids = range(first, first + max_parallel)
        """As root: the uids its programs run as (one per slot)."""
        self._slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(max_parallel):
            self._slots.put(slot)
        self._isolation: str | None = None
        self._lock = threading.Lock()

    @property
    def isolation(self) -> str:
        """The best tier that works here (probed on first use); SandboxUnavailable if none
        does and unconfined execution is not allowed."""
        with self._lock:
            if self._isolation is None:
                self._isolation = self._choose()
            return self._isolation

    def run(self, program: str, limits: Limits | None = None) -> Execution:
        """Run the Python source `program` as a script, confined and limited."""
        return self._run(self.isolation, program, limits or self.limits)

    def _choose(self) -> str:
        for tier in ISOLATIONS[:-1]:
            if shutil.which(tier) and self._probe(tier):
                logger.info("sandbox: model-written code runs under %s", tier)
                return tier
            logger.info("sandbox: %s is not available here", tier)
        if not self.allow_unsandboxed:
            raise SandboxUnavailable(
                "no sandbox for model-written code works here: install bubblewrap (Debian: "
                "apt-get install bubblewrap) or allow user namespaces; or pass "
                "--allow-unsandboxed-exec to run untrusted programs UNCONFINED (dangerous)")
        logger.warning("!" * 78)
        logger.warning("sandbox: NO CONFINEMENT. Model-written programs run with this "
                       "user's file and network access (--allow-unsandboxed-exec).")
        logger.warning("!" * 78)
        return "none"

    def _probe_run(self, tier: str) -> bool:
        try:
            result = self._run(tier, "print(6 * 7)", Limits(wall_s=30.0))
        except OSError as exc:
            logger.info("sandbox probe %s: %s", tier, exc)
            return False
        if not (result.passed and result.stdout.strip() == "42"):
            logger.info("sandbox probe %s: %s %s", tier, result.status, result.stderr[-300:])
            return False
        return True

    def _run(self, tier: str, program: str, limits: Limits) -> Execution:
        with self._slot() as slot, self._workdir(slot) as workdir:
            with open(os.path.join(workdir, PROGRAM), "w", encoding="utf-8") as file:
                file.write(program)
            uid = self.uids[slot] if self._root else -1
            if uid >= 0:
                os.chown(os.path.join(workdir, PROGRAM), uid, uid)
            argv, env, cwd = self._command(tier, workdir, limits, uid)
            try:
                return _execute(argv, env, cwd, limits, tier)
            finally:
                if uid >= 0:
                    _kill_uid(uid)

    @contextmanager
    def _slot(self) -> Iterator[int]:
        slot = self._slots.get()
        try:
            yield slot
        finally:
            self._slots.put(slot)

    @contextmanager
    def _workdir(self, slot: int) -> Iterator[str]:
        workdir = tempfile.mkdtemp(prefix="selfcritic-exec-")
        try:
            if self._root:
                os.chown(workdir, self.uids[slot], self.uids[slot])
            yield workdir
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _command(self, tier: str, workdir: str, limits: Limits, uid: int
                 ) -> tuple[list[str], dict[str, str], str]:
        home = SANDBOX_DIR if tier == "bwrap" else workdir
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}
        python = self.python
        if tier != "bwrap" and uid >= 0 and not _others_can_run(python):
            # Outside bubblewrap the dropped uid sees the host's modes (a pyenv under /root).
            python = shutil.which("python3", path="/usr/bin:/bin") or python
        shim = [self.python, "-I", "-S", "-c", SHIM, str(limits.cpu_s),
                str(limits.memory_bytes), str(limits.file_bytes), str(limits.processes),
                str(uid), python, "-I", "-S", PROGRAM]
        if tier == "bwrap":
            return [*self._bwrap(workdir, limits), *shim], env, workdir
        if tier == "unshare":
            # --kill-child: the namespace's first process dies with unshare, and the kernel
            # then kills every process left in the pid namespace.
            wrap = ["unshare", "--net", "--pid", "--fork", "--ipc", "--uts", "--mount",
                    "--mount-proc", "--kill-child"]
            if not self._root:
                wrap[1:1] = ["--user", "--map-root-user"]
            return [*wrap, *shim], env, workdir
        return shim, env, workdir

    def _bwrap(self, workdir: str, limits: Limits) -> list[str]:
        args = ["bwrap", "--die-with-parent", "--new-session"]
        if self._root:
            # No user namespace: the shim keeps setuid/setgid to drop to the slot's uid
            # (bubblewrap drops every other capability).
            args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                     "--unshare-cgroup-try", "--cap-add", "CAP_SETUID", "--cap-add",
                     "CAP_SETGID"]
        else:
            args += ["--unshare-all"]
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/lib", "/lib32", "/lib64", "/sbin"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for path in ("/etc/ld.so.cache", "/etc/localtime"):
            args += ["--ro-bind-try", path, path]
        made: set[str] = set()
        for path in sorted({self._prefix, os.path.dirname(os.path.dirname(self.python))}):
            if path.startswith("/usr/"):
                continue
            # bubblewrap copies a private parent's mode (/root is 0700): open the path up.
            for parent in _ancestors(path):
                if parent not in made:
                    made.add(parent)
                    args += ["--perms", "0755", "--dir", parent]
            args += ["--ro-bind", path, path]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size",
                 str(limits.tmp_bytes), "--tmpfs", "/tmp", "--bind", workdir, SANDBOX_DIR,
                 "--chdir", SANDBOX_DIR, "--"]
        return args


def _ancestors(path: str) -> list[str]:
    """'/a/b/c' → ['/a', '/a/b']."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _others_can_run(path: str) -> bool:
    """Whether a uid of no group may execute `path` (every ancestor searchable by others)."""
    for step in [*_ancestors(path), path]:
        try:
            if not os.stat(step).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _execute(argv: list[str], env: dict[str, str], cwd: str, limits: Limits,
             isolation: str) -> Execution:
    start = time.monotonic()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, cwd=cwd,
                               start_new_session=True, close_fds=True)
    outputs, truncated, timed_out = _collect(process, start + limits.wall_s, limits.output_bytes)
    # wait4, not Popen.wait: its rusage covers the program (a reaped descendant), which
    # tells a CPU-limit kill from a crash on every tier.
    reaped = None
    while not (timed_out or truncated):
        pid, wait_status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            reaped = wait_status, usage
            break
        if time.monotonic() >= start + limits.wall_s:  # closed its streams, kept running
            timed_out = True
        time.sleep(0.005)
    if reaped is None:
        _kill_tree(process)
        _, wait_status, usage = os.wait4(process.pid, 0)
    else:
        wait_status, usage = reaped
    code = process.returncode = os.waitstatus_to_exitcode(wait_status)
    duration = time.monotonic() - start
    cpu = usage.ru_utime + usage.ru_stime
    stdout, stderr = (data.decode("utf-8", "replace") for data in outputs)
    signum = -code if code < 0 else code - 128 if isolation != "none" and code > 128 else 0
    if timed_out:
        status, exit_code, reason = "timed_out", None, f"wall time limit ({limits.wall_s:g} s)"
    elif truncated:
        status, exit_code = "failed", code
        reason = f"output limit ({limits.output_bytes} bytes) exceeded"
    elif code != 0 and (cpu >= limits.cpu_s * 0.99 or signum == signal.SIGXCPU):
        # bubblewrap's monitor exits without reaping, so there only the signal tells.
        status, exit_code, reason = "timed_out", code, f"CPU time limit ({limits.cpu_s} s)"
    elif code == 0:
        status, exit_code, reason = "passed", 0, ""
    else:
        status, exit_code = "failed", code
        reason = _reason(stderr, signum, code)
    return Execution(status, exit_code, stdout, stderr, duration, isolation, truncated, reason)


def _collect(process: subprocess.Popen[bytes], deadline: float, cap: int
             ) -> tuple[tuple[bytes, bytes], bool, bool]:
    """Read both streams until EOF, the deadline or `cap` bytes on one of them."""
    assert process.stdout is not None and process.stderr is not None
    buffers = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
    truncated = timed_out = False
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                buffer += chunk[:cap - len(buffer)]
                if len(buffer) >= cap:
                    truncated = True
            if truncated:
                break
    process.stdout.close()
    process.stderr.close()
    out, err = buffers.values()
    return (bytes(out), bytes(err)), truncated, timed_out


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the session the wrapper leads; a pid namespace takes its processes along."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _kill_uid(uid: int, patience_s: float = 5.0) -> None:
    """SIGKILL every process left with `uid` and wait until they are gone: a torn-down
    pid namespace outlives its wrapper by a moment, and without one nothing else would."""
    deadline = time.monotonic() + patience_s
    while True:
        left = _pids_of(uid)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            logger.warning("sandbox: processes of uid %d outlived SIGKILL: %s", uid, left)
            return
        time.sleep(0.01)


def _pids_of(uid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    pids.append(int(name))
            except OSError:
                continue
    return pids


def _reason(stderr: str, signum: int, code: int) -> str:
    """The exception line of a traceback, else the signal or exit status."""
    for line in reversed(stderr.strip().splitlines()):
        line = line.strip()
        if line and not line.startswith(("File ", "^", "~")):
            return line[:200]
    if signum == signal.SIGXFSZ:
        return "file size limit exceeded"
    if signum > 0:
        return f"killed by {signal.Signals(signum).name}" if signum in signal.valid_signals() \
            else f"exit status {code}"
    return f"exit status {code}"
