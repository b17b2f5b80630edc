"""The CPU compile-cache setting: vLLM's AOT cache (which cannot reload) turned off."""

from critic_loop.runtime.engines.compile_cache import AOT_VARIABLE, reuse_cpu_compilation


def test_turns_vllms_aot_cache_off() -> None:
    environ: dict[str, str] = {}
    reuse_cpu_compilation(environ)
    assert environ == {AOT_VARIABLE: "0"}


def test_the_operators_own_choice_wins() -> None:
    environ = {AOT_VARIABLE: "1"}
    reuse_cpu_compilation(environ)
    assert environ == {AOT_VARIABLE: "1"}
