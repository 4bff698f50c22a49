"""The edges: CLI, HTTP API, worker. Settings are read here and passed into the core as plain values."""

from .llm_setup import install as _install_llm_setup

_install_llm_setup()  # get_extractor("llm"/"hybrid") in this process gets the HEALTHTRACE_LLM_* settings
