"""GRPO for the one-token fast verdict, without computing the same prompt G times.

The fast judge's completion is a single token, "1" or "2". TRL's `GRPOTrainer` repeats
each prompt `num_generations` times and runs generation, the policy forward and its
backward over every copy; for one token all copies share the prompt, and the whole
answer is the distribution at its last position. `OneTokenGRPOTrainer` computes that
distribution once per distinct prompt, samples the G verdicts from it (restricted to the
verdict tokens, as vLLM's `allowed_token_ids` restricts the served judge), and scores
every copy from the shared forward. Same loss, same gradients; a step costs ~1/G.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from trl import GRPOTrainer

from evaluation.critic_curve import left_pad, positions

logger = logging.getLogger(__name__)


class OneTokenGRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` for text prompts and completions of exactly one token."""

    def __init__(self, *args: Any, verdict_token_ids: Mapping[str, Sequence[int]],
                 pair_baseline: bool = False, verdict_logps: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.max_completion_length != 1:
            raise ValueError("OneTokenGRPOTrainer needs max_completion_length 1, got "
                             f"{self.max_completion_length}")
        self.verdict_token_ids = {str(c): frozenset(ids) for c, ids in verdict_token_ids.items()}
        self.allowed_token_ids = torch.tensor(sorted(set().union(*self.verdict_token_ids.values())))
        self.pair_baseline = pair_baseline
        self.verdict_logps = verdict_logps
        """Log-probabilities over the verdict tokens only (the restricted softmax the
        rollouts sample from), for the policy, the old policy and the reference alike.
        Over the whole vocabulary a negative advantage can push both verdicts down at
        once, moving mass to tokens that are never sampled: the judge's choice barely
        changes while the KL's k3 estimator, exp(ref - logp), grows without bound (on the
        0.5B model it passed 10^5 within 35 steps; docs/training.md)."""

    # -- advantages: one group for both orders of a pair ---------------------------------
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if self.pair_baseline:
            rewards = [float(int(ids[0]) in self.verdict_token_ids.get(str(row["label"]), ()))
                       for row, ids in zip(inputs, output["completion_ids"].tolist(), strict=True)]
            advantages = pair_advantages(rewards, [row["pair_id"] for row in inputs])
            output["advantages"] = torch.tensor(advantages, dtype=output["advantages"].dtype,
                                                device=output["advantages"].device)
        return output

    # -- rollouts: one forward per distinct prompt, G samples from it -------------------
    def _generate_single_turn(self, prompt_ids: list[list[int]], images: Any,
                              multimodal_fields: Any, num_generations: int,
                              has_tool_images: bool = False) -> tuple[list[list[int]], None]:
        if images is not None and any(images):
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields,
                                                 num_generations, has_tool_images)
        distinct, inverse = _distinct(prompt_ids)
        input_ids, attention_mask = left_pad(distinct, self._tokenizer.pad_token_id or 0,
                                              self.accelerator.device)
        model = self.accelerator.unwrap_model(self.model_wrapped)
        with torch.no_grad(), self.accelerator.autocast():
            logits = model(input_ids=input_ids, attention_mask=attention_mask,
                           position_ids=positions(attention_mask),
                           logits_to_keep=1).logits[:, -1].float()
        allowed = self.allowed_token_ids.to(logits.device)
        probs = torch.softmax(logits[:, allowed] / self.temperature, dim=-1)
        rows = probs[torch.tensor(inverse, device=probs.device)]
        picked = allowed[torch.multinomial(rows, 1).squeeze(1)]
        return [[int(t)] for t in picked.tolist()], None

    # -- scoring: the same shared forward, gathered per copy ----------------------------
    def _get_per_token_logps_and_entropies(self, model: Any, input_ids: torch.Tensor,
                                           attention_mask: torch.Tensor, logits_to_keep: int,
                                           batch_size: int | None = None,
                                           compute_entropy: bool = False,
                                           compute_aux_loss: bool = False, **multimodal: Any
                                           ) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        if (logits_to_keep != 1 or compute_aux_loss
                or any(v is not None for v in multimodal.values())):
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **multimodal)
        prompts, tokens = input_ids[:, :-1], input_ids[:, -1]
        keys = torch.cat([prompts, attention_mask[:, :-1]], dim=1)
        distinct, inverse = torch.unique(keys, dim=0, return_inverse=True)
        width = prompts.size(1)
        mask = distinct[:, width:]
        with self.accelerator.autocast():
            logits = model(input_ids=distinct[:, :width], attention_mask=mask,
                           position_ids=positions(mask), logits_to_keep=1).logits[:, -1]
        scaled = logits.float() / self.temperature
        if self.verdict_logps:
            allowed = self.allowed_token_ids.to(scaled.device)
            logps = torch.log_softmax(scaled[:, allowed], dim=-1)[inverse]
            # each sampled token's place among the allowed ones (rollouts only draw those)
            tokens = torch.searchsorted(allowed, tokens.contiguous())
        else:
            logps = torch.log_softmax(scaled, dim=-1)[inverse]
        token_logps = logps.gather(1, tokens[:, None])
        entropies = None
        if compute_entropy:
            entropies = -(logps.exp() * logps).sum(-1, keepdim=True).detach()
        return token_logps, entropies, None


def pair_advantages(rewards: Sequence[float], pair_ids: Sequence[Any]) -> list[float]:
    """GRPO advantages whose group is a pair in both orders, not one prompt.

    A judge that always answers "1" is right on one order of a pair and wrong on the other:
    grouped by prompt, every one of its groups is unanimous and teaches nothing; grouped by
    pair, the baseline is the pair's mean reward, which position cannot raise, so the
    advantage rewards exactly what tells the two orders apart.

    >>> pair_advantages([1, 1, 0, 0], ["p", "p", "p", "p"])  # says "1" to both orders
    [0.8659, 0.8659, -0.8659, -0.8659]
    >>> pair_advantages([1, 0, 1, 1], ["p", "p", "q", "q"])
    [0.707, -0.707, 0.0, 0.0]
    """
    by_pair: dict[Any, list[float]] = {}
    for reward, pair in zip(rewards, pair_ids, strict=True):
        by_pair.setdefault(pair, []).append(float(reward))
    stats = {}
    for pair, values in by_pair.items():
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
        stats[pair] = (mean, std)
    return [round((r - stats[p][0]) / (stats[p][1] + 1e-4), 4) if stats[p][1] > 0 else 0.0
            for r, p in zip(rewards, pair_ids, strict=True)]


def _distinct(prompts: Sequence[Sequence[int]]) -> tuple[list[list[int]], list[int]]:
    """The distinct prompts in first-seen order, and each prompt's index among them.

    >>> _distinct([[1, 2], [3], [1, 2]])
    ([[1, 2], [3]], [0, 1, 0])
    """
    index: dict[tuple[int, ...], int] = {}
    inverse = [index.setdefault(tuple(p), len(index)) for p in prompts]
    return [list(p) for p in index], inverse
