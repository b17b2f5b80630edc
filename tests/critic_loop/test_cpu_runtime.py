"""The CPU engine's thread binding from faked core counts, loads and environments; the
benchmark's preload finder."""

from __future__ import annotations

from pathlib import Path

import pytest

from critic_loop.runtime.engines.cpu_runtime import (
    BIND_VARIABLE,
    BINDING_VARIABLES,
    choose_binding,
    configure_cpu_runtime,
    cpu_list,
    find_preload_libraries,
)


@pytest.mark.parametrize(("cpus", "expected"), [
    ([0], "0"), ([0, 1], "0-1"), ([0, 1, 2, 3], "0-3"), ([2, 3], "2-3"), ([0, 2], "0,2")])
def test_small_idle_machines_compute_on_every_allowed_core(cpus: list[int], expected: str
                                                          ) -> None:
    choice = choose_binding(cpus, {}, load=len(cpus) - 0.5)
    assert choice.environ == {BIND_VARIABLE: expected}
    assert "all compute" in choice.reason


@pytest.mark.parametrize("count", [5, 8, 64])
def test_larger_machines_keep_vllms_reservation(count: int) -> None:
    choice = choose_binding(list(range(count)), {}, load=0.0)
    assert choice.environ == {}
    assert f"{count} cores" in choice.reason


@pytest.mark.parametrize(("cpus", "load"), [([0, 1], 2.0), ([0, 1], 25.0), ([0, 1, 2, 3], 4.5)])
def test_a_busy_machine_keeps_vllms_reservation(cpus: list[int], load: float) -> None:
    choice = choose_binding(cpus, {}, load=load)
    assert choice.environ == {}
    assert "busy" in choice.reason


@pytest.mark.parametrize("variable", BINDING_VARIABLES)
def test_the_operators_binding_wins(variable: str) -> None:
    environ = {variable: "1"}
    configure_cpu_runtime(environ, cpus=[0, 1], load=0.0)
    assert environ == {variable: "1"}


def test_an_unknown_load_keeps_vllms_binding() -> None:
    environ: dict[str, str] = {}
    configure_cpu_runtime(environ, cpus=[0, 1])
    assert BIND_VARIABLE not in environ


def test_unrelated_variables_do_not_count_as_a_binding() -> None:
    environ = {"VLLM_CPU_KVCACHE_SPACE": "4", "OMP_WAIT_POLICY": "PASSIVE"}
    configure_cpu_runtime(environ, cpus=[0, 1], load=0.0)
    assert environ[BIND_VARIABLE] == "0-1"


def test_cpu_list_joins_ranges() -> None:
    assert cpu_list([3, 0, 1, 7]) == "0-1,3,7"


def test_preload_libraries_are_found_once_each(tmp_path: Path) -> None:
    system, venv = tmp_path / "system", tmp_path / "venv"
    system.mkdir()
    venv.mkdir()
    for name in ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"):
        (system / name).touch()
    (venv / "libiomp5.so").touch()
    assert find_preload_libraries([system, venv]) == [
        str(system / "libtcmalloc_minimal.so.4"), str(venv / "libiomp5.so")]
    assert find_preload_libraries([tmp_path / "none"]) == []
