"""A vision-language model on the real vLLM engine, through the official openai client:
chat with an image, self-critic over it, and /v1/critique with images.

vLLM's vision-language model code imports torchvision. Where it cannot be imported (the
CPU machine this project is developed on: PyPI has no CPU torchvision for its torch) the
module skips with that reason; with PyTorch's CPU torchvision, or on a GPU, it runs.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

try:
    import torchvision  # noqa: F401
except Exception as exc:  # ImportError, or a CUDA build whose ops cannot load on CPU torch
    pytest.skip(f"vLLM's vision-language models need torchvision, which does not import "
                f"here ({type(exc).__name__}: {exc})", allow_module_level=True)

from tests.support.tiny_vlm import build_tiny_vlm

RED = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR42mP8z4A"
       "dMDEMKQkAzUEBD7t4NqoAAAAASUVORK5CYII=")
"""An 8x8 red PNG."""


@pytest.fixture(scope="module")
def vlm_server(launch_server: Callable, tmp_path_factory: pytest.TempPathFactory):
    model = build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm") / "tiny-vlm")
    return launch_server(["--model", str(model), "--served-model-name", "tiny-vlm",
                          "--max-model-len", "1024", "--default-max-tokens", "16"])


@pytest.fixture(scope="module")
def vlm_client(vlm_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=vlm_server.url + "/v1", api_key="unused", max_retries=0,
                         timeout=300)


def image_question() -> list[dict]:
    return [{"role": "user", "content": [
        {"type": "text", "text": "What colour is"},
        {"type": "image_url", "image_url": {"url": RED}},
        {"type": "text", "text": "?"}]}]


def test_chat_with_an_image(vlm_client: openai.OpenAI) -> None:
    reply = vlm_client.chat.completions.create(model="tiny-vlm", messages=image_question(),
                                               max_tokens=8, temperature=0)
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 4  # the image's tokens are counted


def test_self_critic_with_an_image(vlm_client: openai.OpenAI) -> None:
    reply = vlm_client.chat.completions.create(
        model="tiny-vlm", messages=image_question(), max_tokens=8, n=2,
        extra_body={"self_critic": {"candidates": 3, "judge": "fast"}})
    report = reply.model_extra["self_critic"]
    assert report["images"] == 1 and report["judge_calls"] >= 2
    assert len(reply.choices) == 2


def test_critique_with_images(vlm_server) -> None:
    reply = httpx.post(vlm_server.url + "/v1/critique", timeout=300, json={
        "question": "What colour is the image?", "images": [RED],
        "responses": ["Red.", "Blue."], "judge": "fast"})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["judgments"]) == 2
