"""The one way to configure healthtrace: environment variables with the ``HEALTHTRACE_`` prefix.

Settings are read at the edges (CLI, HTTP app) and passed down as plain values, so the core stays pure.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEALTHTRACE_", env_file=None, extra="ignore")

    home: Path = Path(".healthtrace")
    database_url: str | None = None  # default: SQLite file in ``home``
    chroma_url: str | None = None  # e.g. http://127.0.0.1:8000 for a `chroma run` server
    embedder: Literal["minilm", "hashing"] = "minilm"

    # input bounds
    max_file_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_files_per_call: int = Field(default=10_000, gt=0)
    max_csv_rows: int = Field(default=5_000_000, gt=0)

    # metadata extractor
    unresponsive_days: int = Field(default=14, gt=0)
    # your own email domains: a plain comma list (HEALTHTRACE_VENDOR_DOMAINS=acme.io,acme.com); a JSON list works too
    vendor_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # LLM extractor
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(default=60.0, gt=0)  # read timeout: how long one answer may take
    llm_connect_timeout_s: float = Field(default=5.0, gt=0)  # connect timeout: a dead endpoint is known this fast
    llm_max_tokens: int | None = Field(default=None, ge=16)  # cap on each answer's completion tokens
    llm_structured_method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema"
    llm_max_retries: int = Field(default=5, ge=0)
    llm_concurrency: int = Field(default=4, ge=1)
    llm_chunk_tokens: int = Field(default=1500, ge=200)
    llm_price_prompt_per_1k: float = 0.00015
    llm_price_completion_per_1k: float = 0.0006
    llm_batch_tokens: int = Field(default=6000, ge=200)  # small chunks of several documents share one request
    llm_batch_pieces: int = Field(default=32, ge=1)
    llm_context_tokens: int = Field(default=64, ge=0)  # tail of the previous chunk shown before each chunk
    llm_cache: bool = True  # SQLite cache of answers in ``home`` keyed by (text hash, prompt version, model)
    llm_hybrid_window_tokens: int = Field(default=200, ge=50)  # hybrid: size of the windows rules pre-select
    llm_backoff_max_s: float = Field(default=60.0, gt=0)

    # the extractor the API's ingest uses (the CLI's --extractor default too): offline, rules, learned, llm or hybrid
    extractor: Literal["offline", "rules", "learned", "llm", "hybrid"] = "offline"

    # scoring
    model_file: Path | None = None
    alert_drop_points: float = 10.0

    # HTTP API (api/app.py)
    api_max_body_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    api_max_batch: int = Field(default=1000, gt=0)
    api_rate_per_s: float = Field(default=50.0, gt=0)  # per API key, token bucket
    api_rate_burst: int = Field(default=100, gt=0)
    api_ingest_queue: int = Field(default=32, ge=1, le=10_000)  # writes waiting for the ingest worker; then 503
    api_embed_threads: int = Field(default=1, ge=0)  # the API's background embedding (0: all cores)
    public_url: str | None = None  # base URL for links in webhook messages, e.g. http://127.0.0.1:8000
    webhook_max_attempts: int = Field(default=6, ge=1, le=20)
    webhook_backoff_s: float = Field(default=2.0, gt=0)  # first retry delay, doubled each attempt
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # loopback/private receivers (tests, a private deployment); off: internal addresses are refused (SSRF)
    webhook_allow_private: bool = False
    webhook_max_per_tenant: int = Field(default=50, ge=1, le=10_000)  # active webhooks per tenant

    # scaled deployment (README "Deployment (scaled)"): a job queue on Celery; off when no broker is set
    broker_url: str | None = None  # e.g. redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//
    redis_url: str | None = None  # shared rate limits; default: the broker URL when it is redis://
    queue_visibility_s: float = Field(default=3600.0, gt=0)  # Redis: an unacknowledged job is redelivered then
    task_max_retries: int = Field(default=5, ge=0, le=50)  # then the job is dead (`healthtrace jobs --failed`)
    task_backoff_s: float = Field(default=2.0, gt=0)  # first retry delay, doubled each retry (capped at 10 min)

    @field_validator("vendor_domains", mode="before")
    @classmethod
    def _domain_list(cls, value: Any) -> Any:
        """``a.io,b.io`` (or ``a.io b.io``, or a JSON list) -> ["a.io", "b.io"]: lower-cased, no "@", no blanks."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                try:
                    value = json.loads(text)
                except ValueError:
                    raise ValueError("not a JSON list; write a plain comma list: a.io,b.io") from None
            else:
                value = re.split(r"[,;\s]+", text)
        if isinstance(value, list | tuple):
            out = []
            for v in value:
                d = str(v).strip().lower().lstrip("@")
                if not d:
                    continue
                if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+", d):
                    raise ValueError(f"{d!r} is not a domain (expected e.g. acme.io)")
                out.append(d)
            return list(dict.fromkeys(out))
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'healthtrace.db').resolve()}"

    @property
    def shared_redis_url(self) -> str | None:
        """Where replicas share rate limits: HEALTHTRACE_REDIS_URL, else a redis:// broker, else none."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
