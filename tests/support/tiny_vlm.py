"""A tiny random-weight LLaVA-architecture model, built offline from a config.

No weights are downloaded or committed: a 2-layer Llama with a 1-layer CLIP vision tower,
the default model's tokenizer plus an `<image>` token, and a chat template that puts an
`<image>` placeholder where each image part is. Tests build it into a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

from critic_loop.builtin_models import TEST_MODEL

IMAGE_TOKEN = "<image>"
IMAGE_SIZE = 28
PATCH_SIZE = 14
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2
"""Tokens one image becomes in the prompt (the CLS feature is dropped)."""

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] in ['image', 'image_url'] %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML, as the default model's, with image parts rendered in place as `<image>`."""


def build_tiny_vlm(out_dir: str | Path) -> Path:
    """Write the model, its processor (tokenizer, image processor, chat template) to
    `out_dir` and return it; ~1 s on a CPU."""
    import torch
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from critic_loop.runtime.model_store import resolve_model

    out = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(TEST_MODEL).path)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tokenizer.chat_template = CHAT_TEMPLATE
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=2048, tie_word_embeddings=True,
                       bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                              num_attention_heads=4, image_size=IMAGE_SIZE,
                              patch_size=PATCH_SIZE, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                         image_seq_length=IMAGE_TOKENS, vision_feature_layer=-1,
                         vision_feature_select_strategy="default",
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(out)
    image_processor = CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                         crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               patch_size=PATCH_SIZE, vision_feature_select_strategy="default",
                               chat_template=CHAT_TEMPLATE, image_token=IMAGE_TOKEN,
                               num_additional_image_tokens=1)
    processor.save_pretrained(out)
    return out
