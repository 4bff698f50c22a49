"""Versioned prompt files: verbatim few-shot quotes, every placeholder filled, released versions frozen."""

from __future__ import annotations

import re

import pytest

from extractors.errors import ConfigError
from extractors.models import taxonomy
from prompts.loader import available, file_digests, load_prompt, released


def test_every_example_quote_occurs_verbatim() -> None:
    for version in available("extract"):
        p = load_prompt("extract", version)
        assert p.examples, f"extract/{version} has no few-shot examples"
        for ex in p.examples:
            assert ex["signals"]
            for s in ex["signals"]:
                assert s["type"] in taxonomy()
                start = ex["text"].find(s["quote"])
                assert start >= 0, f"{s['quote']!r} is not in its example text"
                assert ex["text"][start : start + len(s["quote"])] == s["quote"]


def test_every_placeholder_is_filled() -> None:
    from extractors.llm import LLMExtractor

    ex = LLMExtractor(llm=None)  # type: ignore[arg-type]  # rendering never touches the model
    system = ex.system_text
    assert not re.search(r"\$\{?[A-Za-z_]", system)
    for name in taxonomy():
        assert f"{name}: " in system
    from extractors.chunking import Chunk
    from extractors.llm import _Batch, _Piece

    batch = _Batch([_Piece(0, Chunk(0, 0, 5, 0, 1), "costs $5 {x}", "h", 3)])
    user = ex.user_text(batch)
    assert "costs $5 {x}" in user  # a dollar sign in a document is data, not a placeholder
    assert not re.search(r"\$\{?[A-Za-z_]", user.replace("$5", ""))
    reask = ex.messages(batch, reask_error="the reply is not valid JSON")[-1].content
    assert "not valid JSON" in reask and "$error" not in reask


def test_missing_or_unexpected_values_fail_loudly() -> None:
    p = load_prompt("extract", "v1")
    assert p.placeholders("user") == {"documents"}
    with pytest.raises(ConfigError, match="missing"):
        p.render("user")
    with pytest.raises(ConfigError, match="unexpected"):
        p.render("user", documents="x", extra="y")
    with pytest.raises(ConfigError, match="not found"):
        load_prompt("extract", "v999")
    with pytest.raises(ConfigError, match="invalid"):
        load_prompt("../etc", "v1")


def test_released_versions_are_never_edited_in_place() -> None:
    pinned = released()
    assert "extract/v1" in pinned and "polish/v1" in pinned
    for ident, files in pinned.items():
        task, version = ident.split("/")
        assert file_digests(task, version) == files, f"{ident} changed after release: add a new version instead"
    for task in ("extract", "polish"):
        for version in available(task):
            assert f"{task}/{version}" in pinned, f"{task}/{version} is not pinned in prompts/RELEASED.json"


def test_prompt_id_is_recorded_format() -> None:
    assert load_prompt("extract", "v1").id == "extract/v1"
