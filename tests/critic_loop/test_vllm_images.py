"""The vLLM engine's image requests, checked where they meet `AsyncLLM` (a fake one): the
prompt rendered by the model's own processor with its placeholders in place, the images
in order as `multi_modal_data`, and the images' tokens in the context budget."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("vllm")

from PIL import Image

from critic_loop.config import SelfCriticConfig
from critic_loop.critique import rank_responses
from critic_loop.engine import GenerationRequest, PromptTooLongError, SamplingOptions
from critic_loop.runtime.engines.vllm_async import EngineConfig, VLLMEngine
from critic_loop.runtime.engines.vllm_images import ImagePrompter
from tests.support.tiny_vlm import IMAGE_TOKENS, build_tiny_vlm

RED, BLUE = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (30, 40), "blue")


class FakeAsyncLLM:
    """Records what `AsyncLLM.generate` is given; answers "1" to everything."""

    def __init__(self, multimodal: bool, max_model_len: int = 512) -> None:
        limits = SimpleNamespace(get_limit_per_prompt=lambda modality: 4)
        self.model_config = SimpleNamespace(
            max_model_len=max_model_len, is_multimodal_model=multimodal,
            supports_multimodal_inputs=multimodal, multimodal_config=limits)
        self.errored = False
        self.prompts: list[dict[str, Any]] = []

    async def generate(self, prompt: dict[str, Any], params: Any, request_id: str):
        self.prompts.append(prompt)
        out = SimpleNamespace(index=0, text="1", token_ids=[16], finish_reason="stop",
                              logprobs=None)
        yield SimpleNamespace(outputs=[out], num_cached_tokens=0)


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))


def make_engine(model_dir: Path, multimodal: bool = True, max_model_len: int = 512
                ) -> tuple[VLLMEngine, FakeAsyncLLM]:
    from transformers import AutoTokenizer

    llm = FakeAsyncLLM(multimodal, max_model_len)
    engine = VLLMEngine(llm, AutoTokenizer.from_pretrained(model_dir),  # type: ignore[arg-type]
                        EngineConfig(model=str(model_dir), served_name="tiny-vlm"),
                        images=ImagePrompter.load(str(model_dir)))
    return engine, llm


def conversation(*images: Image.Image) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "Compare"}]
    for image in images:
        parts += [{"type": "image", "image": image}, {"type": "text", "text": "and"}]
    return [{"role": "user", "content": parts}]


async def test_images_reach_vllm_in_order_with_placeholders_in_place(vlm_dir: Path) -> None:
    engine, llm = make_engine(vlm_dir)
    assert engine.supports_images
    prompt = engine.render_chat(conversation(RED, BLUE))
    assert "user\nCompare<image>and<image>and<|im_end|>" in prompt  # not moved to the front
    [result] = await engine.generate([GenerationRequest("r", prompt, images=(RED, BLUE))])
    [sent] = llm.prompts
    assert sent["multi_modal_data"] == {"image": [RED, BLUE]}
    image_id = engine.tokenizer.convert_tokens_to_ids("<image>")
    assert sent["prompt_token_ids"].count(image_id) == 2
    assert sent["prompt_token_ids"] == engine.tokenizer.encode(prompt, add_special_tokens=False)
    placeholders = len(sent["prompt_token_ids"])
    assert result.prompt_tokens == placeholders - 2 + 2 * IMAGE_TOKENS
    assert engine.count_tokens(prompt, [RED, BLUE]) == result.prompt_tokens


async def test_text_requests_are_unchanged(vlm_dir: Path) -> None:
    engine, llm = make_engine(vlm_dir)
    prompt = engine.render_chat([{"role": "user", "content": "Hi"}])
    await engine.generate([GenerationRequest("r", prompt)])
    assert llm.prompts == [{"prompt_token_ids": engine.tokenizer.encode(
        prompt, add_special_tokens=False)}]


async def test_image_tokens_count_against_the_context(vlm_dir: Path) -> None:
    engine, llm = make_engine(vlm_dir, max_model_len=40)
    prompt = engine.render_chat(conversation(RED))
    text_only = engine.count_tokens(prompt)
    max_tokens = 40 - text_only  # fits as text, not with the image's tokens
    request = GenerationRequest("r", prompt, SamplingOptions(max_tokens=max_tokens),
                                images=(RED,))
    with pytest.raises(PromptTooLongError):
        await engine.generate([request])
    assert llm.prompts == []


async def test_every_judgment_carries_the_question_images(vlm_dir: Path) -> None:
    engine, llm = make_engine(vlm_dir, max_model_len=2048)
    question = conversation(RED, BLUE)
    await rank_responses(engine, question, ["red then blue", "blue then red"],
                         SelfCriticConfig(judge="fast", comparisons=2), "c")
    assert len(llm.prompts) == 2
    for sent in llm.prompts:
        assert sent["multi_modal_data"] == {"image": [RED, BLUE]}


def test_a_text_only_model_does_not_read_images(vlm_dir: Path) -> None:
    engine, _ = make_engine(vlm_dir, multimodal=False)
    assert not engine.supports_images
