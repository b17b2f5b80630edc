"""Fake built-in models for the model-store tests: tiny "GGUF" parts in packages on a
temporary `sys.path`, whose `__init__.py` fails if anything imports it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from critic_loop.builtin_models import BuiltinModel, SourcePackage

POISON = "raise RuntimeError('a third-party model package was imported')\n"


def fake_model(root: Path, monkeypatch: pytest.MonkeyPatch, parts: list[bytes], *,
               prefix: str = "fake_gguf_pkg", sha256: str | None = None,
               install: bool = True) -> BuiltinModel:
    """A registry entry whose GGUF file is `parts` joined, each part in a package of its
    own under `root` (put on `sys.path` when `install`); `sha256` overrides the pin."""
    packages = []
    for i, data in enumerate(parts, 1):
        module = f"{prefix}_part{i}"
        packages.append(SourcePackage(module.replace("_", "-"), "0.1.0", module, f"data/p{i}.bin"))
        if install:
            folder = root / module / "data"
            folder.mkdir(parents=True)
            (folder / f"p{i}.bin").write_bytes(data)
            (root / module / "__init__.py").write_text(POISON)
    if install:
        monkeypatch.syspath_prepend(str(root))
    whole = b"".join(parts)
    return BuiltinModel(
        name=f"{prefix}-model", parameters="1K", licence="MIT", quantisation="Q4_0 GGUF",
        packages=tuple(packages), gguf_sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        gguf_bytes=len(whole), generation_config=(("temperature", 0.5), ("top_k", 7)),
        generation_source="a test")
