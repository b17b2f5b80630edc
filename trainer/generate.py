"""Answers from a local model with transformers: sampled for pair mining, greedy for the
policy curve, rendered by the chat template as the server renders a chat request.

No server is started, so the trainer can sample its own model in-process (the training
model, LoRA and all, for the policy curve; a model directory for `data pairs --engine
transformers`). The decoding defaults not set here come from the model's
generation_config.json, as the server takes them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

logger = logging.getLogger(__name__)


class LocalGenerator:
    """Generates answers to user questions with `model` (a causal LM) and its tokenizer."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 32) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    @classmethod
    def from_dir(cls, model_dir: str, *, batch_size: int = 32) -> LocalGenerator:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        return cls(model.eval(), AutoTokenizer.from_pretrained(model_dir), batch_size=batch_size)

    def generate(self, questions: Sequence[str], *, n: int = 1, temperature: float = 0.0,
                 max_new_tokens: int = 64, seed: int = 0) -> list[list[str]]:
        """`n` answers per question (greedy when `temperature` is 0, then n must be 1),
        in question order. Seeded: the same call gives the same answers on one machine."""
        if temperature == 0 and n != 1:
            raise ValueError("greedy decoding gives one answer per question (n=1)")
        prompts = [self._encode(q) for q in questions for _ in range(n)]
        texts: list[str] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(prompts), self.batch_size):
                torch.manual_seed(seed + start)
                texts.extend(self._batch(prompts[start:start + self.batch_size], temperature,
                                         max_new_tokens))
        finally:
            self.model.train(was_training)
        return [texts[i * n:(i + 1) * n] for i in range(len(questions))]

    def _encode(self, question: str) -> list[int]:
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                                  tokenize=False, add_generation_prompt=True)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _batch(self, rows: list[list[int]], temperature: float, max_new_tokens: int) -> list[str]:
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id or 0
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding: every answer starts at the same column
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
        sampling: dict[str, Any] = ({"do_sample": True, "temperature": temperature}
                                    if temperature > 0 else
                                    {"do_sample": False, "temperature": None, "top_p": None,
                                     "top_k": None})
        with torch.no_grad():
            out = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                      max_new_tokens=max_new_tokens, pad_token_id=pad,
                                      **sampling)
        return self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
