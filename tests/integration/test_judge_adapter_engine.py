"""A judge-adapter export on the real vLLM CPU engine: judgments run with the trained LoRA
adapter, answers with the base weights, each token for token as transformers (PEFT) runs
the same weights."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from critic_loop.builtin_models import TEST_MODEL
from critic_loop.engine import JUDGE_ADAPTER, GenerationRequest, SamplingOptions
from critic_loop.runtime.judge_adapter import find_judge_adapter
from critic_loop.runtime.model_store import resolve_model

QUESTION = [{"role": "user", "content": "Tell me about dragons."}]
TOKENS = 12


def _greedy(model, tokenizer) -> str:
    ids = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=TOKENS, do_sample=False)
    return tokenizer.decode(out[0][ids.shape[1]:], skip_special_tokens=True)


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, str, str]:
    """The default model with a random (but strong) adapter, exported as a judge adapter;
    and what transformers answers greedily without and with it, from the exported files."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.export import export_model

    base = resolve_model(TEST_MODEL).path
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, init_lora_weights=False,
                                                  target_modules="all-linear"))
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.08)
    out = export_model(peft_model, tokenizer, tmp_path_factory.mktemp("critic") / "final",
                       metadata={"base_model": TEST_MODEL}, base_dir=base, judge_adapter=True)
    served = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    answer = _greedy(served, tokenizer)
    adapter = find_judge_adapter(out)
    assert adapter is not None
    judged = _greedy(PeftModel.from_pretrained(served, adapter.path), tokenizer)
    assert judged != answer  # the adapter matters, or the test below could not fail
    return out, answer, judged


async def test_judgments_run_with_the_adapter_and_answers_without(export) -> None:
    from critic_loop.runtime.engines.vllm_async import VLLMEngine

    folder, answer, judged = export
    engine = VLLMEngine.from_model(str(folder), dtype="float32", enforce_eager=True)
    try:
        prompt = engine.render_chat(QUESTION)
        greedy = SamplingOptions(max_tokens=TOKENS, temperature=0.0)
        plain, with_adapter = await engine.generate([
            GenerationRequest("answer", prompt, greedy),
            GenerationRequest("judgment", prompt, greedy, adapter=JUDGE_ADAPTER)])
    finally:
        await asyncio.shield(engine.close())
    assert plain.completions[0].text.strip() == answer.strip()
    assert with_adapter.completions[0].text.strip() == judged.strip()
