"""The learning curve: held-out fast-judge accuracy measured while a critic trains.

Every `eval_steps` optimiser steps (and before the first) the model judges held-out pairs
in both orders with the fast judge exactly as served: the judge prompt rendered by the
chat template, one position, probability of every spelling of "1" against every
spelling of "2". The figures are `evaluation.critic_eval.score`'s and land in `metrics.jsonl`
as `eval/...` beside the training metrics, so `selfcritic eval curve` can plot them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from critic_loop.judge_prompt import VERDICT_CHOICES, judge_messages
from critic_loop.verdict_tokens import verdict_token_ids
from evaluation.critic_eval import PairVerdicts, score
from evaluation.pairs import PreferencePair

logger = logging.getLogger(__name__)

EVAL_KEYS = ("accuracy", "match_accuracy", "consistency", "first_position_rate",
             "invalid_rate")


class HeldOutCurve(TrainerCallback):
    """Logs fast-judge accuracy on `pairs` at step 0, every `every` steps and at the end."""

    def __init__(self, pairs: Sequence[PreferencePair], tokenizer: Any, metrics_path: Path,
                 every: int, *, batch_size: int = 32, bf16: bool = False) -> None:
        self.pairs = list(pairs)
        self.tokenizer = tokenizer
        self.metrics_path = Path(metrics_path)
        self.every = every
        self.batch_size = batch_size
        self.bf16 = bf16
        self.token_ids = verdict_token_ids(tokenizer, VERDICT_CHOICES)
        self._prompts = [self._encode(p, swapped) for p in self.pairs for swapped in (False, True)]
        self._last_step: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        self._evaluate(state, model)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None,
                    **kwargs: Any) -> None:
        if state.global_step % self.every == 0:
            self._evaluate(state, model)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None,
                     **kwargs: Any) -> None:
        self._evaluate(state, model)

    # -- measuring ------------------------------------------------------------------------
    def first_probabilities(self, model: Any) -> list[float]:
        """P("1") against "2" for every held-out prompt (each pair as given, then swapped)."""
        device = next(model.parameters()).device
        out: list[float] = []
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                             enabled=self.bf16):
            for start in range(0, len(self._prompts), self.batch_size):
                ids, mask = left_pad(self._prompts[start:start + self.batch_size],
                                     self.tokenizer.pad_token_id or 0, device)
                logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask),
                               logits_to_keep=1).logits[:, -1].float()
                logps = torch.log_softmax(logits, dim=-1)
                one, two = (torch.logsumexp(logps[:, list(self.token_ids[c])], dim=-1)
                            for c in VERDICT_CHOICES)
                out.extend(torch.sigmoid(one - two).tolist())
        return out

    def verdicts(self, model: Any) -> list[PairVerdicts]:
        p = self.first_probabilities(model)
        return [_verdict(pair, p[2 * i], p[2 * i + 1]) for i, pair in enumerate(self.pairs)]

    def _evaluate(self, state: Any, model: Any) -> None:
        if model is None or not state.is_world_process_zero or self._last_step == state.global_step:
            return
        self._last_step = state.global_step
        started = time.monotonic()
        was_training = model.training
        model.eval()
        try:
            report = score(self.verdicts(model), model="training", mode="fast")
        finally:
            model.train(was_training)
        record = {"step": state.global_step, "eval/pairs": report.pairs,
                  **{f"eval/{k}": getattr(report, k) for k in EVAL_KEYS},
                  "eval/seconds": round(time.monotonic() - started, 1)}
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        logger.info("step %d held-out: accuracy %.1f%%, K=2 match accuracy %.1f%%, says 1 %.1f%%",
                    state.global_step, 100 * report.accuracy, 100 * report.match_accuracy,
                    100 * report.first_position_rate)

    def _encode(self, pair: PreferencePair, swapped: bool) -> list[int]:
        first, second = ((pair.response_2, pair.response_1) if swapped
                         else (pair.response_1, pair.response_2))
        question: Any = pair.question if isinstance(pair.question, str) else list(pair.question)
        text = self.tokenizer.apply_chat_template(judge_messages(question, first, second, "fast"),
                                                  tokenize=False, add_generation_prompt=True)
        return self.tokenizer.encode(text, add_special_tokens=False)


def _verdict(pair: PreferencePair, first_given: float, first_swapped: float) -> PairVerdicts:
    """A pair's two fast judgments as `score` reads them (a tie is an invalid vote)."""
    def said(p_first: float, shown_first: int) -> int | None:
        if p_first == 0.5:
            return None
        return shown_first if p_first > 0.5 else 3 - shown_first

    right_given = first_given if pair.label == 1 else 1 - first_given
    right_swapped = 1 - first_swapped if pair.label == 1 else first_swapped
    return PairVerdicts(label=pair.label, as_given=said(first_given, 1),
                        swapped=said(first_swapped, 2), texts=("", ""),
                        probabilities=(right_given, right_swapped))


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first real token, as an unpadded prompt has them
    when it is served (left padding would otherwise shift them)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def left_pad(rows: Sequence[Sequence[int]], pad: int, device: Any
              ) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device)
