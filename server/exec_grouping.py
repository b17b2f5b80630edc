"""`--exec-grouping`: the one sandbox and worker pool a server runs candidate programs in.

It runs model-written code, so it starts only when a confinement works here: a server
never runs such code unconfined, and refuses to start instead.
"""

from __future__ import annotations

import logging
import math

from critic_loop.code.grader import CodeGrader
from critic_loop.code.sandbox import Limits, Sandbox, SandboxUnavailable
from server.settings import ServerSettings

logger = logging.getLogger(__name__)


class ExecGroupingUnavailable(RuntimeError):
    """--exec-grouping was asked for, but no sandbox works on this machine."""


def start_code_grader(settings: ServerSettings, sandbox: Sandbox | None = None) -> CodeGrader:
    """Blocking (it probes the sandbox by running a program): the grader whose threads
    run the candidates' programs. `sandbox` replaces the one the settings describe."""
    sandbox = sandbox or Sandbox(
        Limits(wall_s=settings.exec_grouping_wall_s,
               cpu_s=max(1, math.ceil(settings.exec_grouping_wall_s)),
               memory_bytes=settings.exec_grouping_memory_mb << 20),
        max_parallel=settings.exec_grouping_workers)
    try:
        isolation = sandbox.isolation
    except SandboxUnavailable as exc:
        raise ExecGroupingUnavailable(
            "--exec-grouping runs model-written code and needs a sandbox, but none works "
            "here: install bubblewrap (Debian: apt-get install bubblewrap) or allow "
            "unprivileged user namespaces (unshare), or start without --exec-grouping"
            ) from exc
    if isolation == "none":  # a caller's sandbox that allows it: never on a server
        raise ExecGroupingUnavailable("--exec-grouping never runs model-written code "
                                      "unconfined; give it a sandbox that confines")
    logger.info("--exec-grouping: code candidates run under %s, %d at once",
                isolation, sandbox.max_parallel)
    return CodeGrader(sandbox)
