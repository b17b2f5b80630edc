"""The core is pure by construction: every critic_loop module outside critic_loop.runtime
imports with vLLM, FastAPI and torch made unimportable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCKED = ("vllm", "fastapi", "torch")

# A meta-path finder placed first: any import of a blocked package (or its submodules)
# fails, whether or not the package is installed. Then import every named module.
PROBE = """
import importlib, sys

BLOCKED = {blocked!r}

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: the pure core must not import it")
        return None

for name in BLOCKED:
    for loaded in [m for m in sys.modules if m.split(".")[0] == name]:
        del sys.modules[loaded]
sys.meta_path.insert(0, Blocked())
failed = []
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except ImportError as error:
        failed.append(f"{{module}}: {{error}}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def core_modules() -> list[str]:
    root = REPO / "critic_loop"
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if "runtime" in parts or "__pycache__" in parts:
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def probe(modules: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE.format(blocked=BLOCKED), *modules],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_every_core_module_imports_without_vllm_fastapi_or_torch() -> None:
    modules = core_modules()
    assert "critic_loop.pipeline" in modules and "critic_loop.selection.knockout" in modules
    assert not any(m.startswith("critic_loop.runtime") for m in modules)
    result = probe(modules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_probe_catches_a_module_that_imports_vllm() -> None:
    """The check can fail: a runtime module that imports vLLM at import time is refused."""
    result = probe(["critic_loop.runtime.engines.vllm_progress"])
    assert result.returncode == 1 and "vllm is blocked" in result.stdout
