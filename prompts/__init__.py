"""Versioned prompt files for the LLM extractor and narration polish; see :mod:`prompts.loader`."""

from .loader import PromptSet, load_prompt

__all__ = ["PromptSet", "load_prompt"]
