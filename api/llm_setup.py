"""The LLM extractors' configuration, read from settings here at the edge and passed into ``extractors.llm``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from extractors.llm import LLMSetup

    from .settings import Settings


def llm_setup(settings: Settings) -> LLMSetup:
    from extractors.llm import LLMClientConfig, LLMConfig, LLMSetup

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return LLMSetup(
        client=LLMClientConfig(
            base_url=settings.llm_base_url,
            api_key=key,
            model=settings.llm_model,
            connect_timeout_s=settings.llm_connect_timeout_s,
            read_timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
        ),
        config=LLMConfig(
            model=settings.llm_model,
            structured_method=settings.llm_structured_method,
            max_retries=settings.llm_max_retries,
            concurrency=settings.llm_concurrency,
            chunk_tokens=settings.llm_chunk_tokens,
            context_tokens=settings.llm_context_tokens,
            batch_tokens=settings.llm_batch_tokens,
            batch_pieces=settings.llm_batch_pieces,
            backoff_max_s=settings.llm_backoff_max_s,
            price_prompt_per_1k=settings.llm_price_prompt_per_1k,
            price_completion_per_1k=settings.llm_price_completion_per_1k,
        ),
        cache_path=settings.home / "llm_cache.sqlite" if settings.llm_cache else None,
        hybrid_window_tokens=settings.llm_hybrid_window_tokens,
    )


def _from_current_settings() -> dict[str, object]:
    from .container import build_services

    return {"setup": build_services().llm_setup()}


def install() -> None:
    """Make ``get_extractor("llm" | "hybrid")`` anywhere in this process use the HEALTHTRACE_LLM_* settings."""
    from extractors.base import set_default_options

    for name in ("llm", "hybrid"):
        set_default_options(name, _from_current_settings)
