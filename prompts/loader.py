"""Versioned prompt files: ``prompts/<task>/<version>/*.md`` templates plus ``examples.json`` few-shot data.

A released version is never edited in place (``RELEASED.json`` pins each file's sha256 and a test enforces it):
a changed prompt is a new version, so every stored signal's ``prompt_version`` names the exact words used.
Templates use ``$name`` placeholders (:class:`string.Template`); rendering fails loudly on a missing value.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

from extractors.errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")
MAX_PROMPT_FILE_CHARS = 50_000


@dataclass(frozen=True)
class PromptSet:
    """One version of one task's prompts."""

    task: str
    version: str
    templates: dict[str, str] = field(default_factory=dict)  # file stem -> template text
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        """What signals record as ``prompt_version``, e.g. ``extract/v1``."""
        return f"{self.task}/{self.version}"

    def placeholders(self, name: str) -> set[str]:
        tpl = Template(self.template(name))
        return {m.group("named") or m.group("braced") for m in tpl.pattern.finditer(tpl.template)} - {None}

    def template(self, name: str) -> str:
        try:
            return self.templates[name]
        except KeyError:
            raise ConfigError(f"prompt {self.id} has no template {name!r}") from None

    def render(self, name: str, **values: str) -> str:
        """Fill every placeholder of template ``name``; a missing or unused value is an error."""
        wanted = self.placeholders(name)
        missing = wanted - values.keys()
        extra = values.keys() - wanted
        if missing or extra:
            raise ConfigError(
                f"prompt {self.id}/{name}: missing values {sorted(missing)}, unexpected values {sorted(extra)}"
            )
        return Template(self.template(name)).substitute(values).strip()


def available(task: str) -> list[str]:
    root = resources.files(__package__).joinpath(task)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _NAME.match(p.name))


@lru_cache(maxsize=16)
def load_prompt(task: str, version: str) -> PromptSet:
    """Read ``prompts/<task>/<version>/``: every ``*.md`` is a template, ``examples.json`` the few-shot data."""
    if not _NAME.match(task) or not _NAME.match(version):
        raise ConfigError(f"invalid prompt name {task!r}/{version!r}")
    root = resources.files(__package__).joinpath(task, version)
    if not root.is_dir():
        raise ConfigError(f"prompt {task}/{version} not found; available versions: {available(task) or 'none'}")
    templates: dict[str, str] = {}
    examples: list[dict[str, Any]] = []
    for p in root.iterdir():
        if p.name.endswith(".md"):
            text = p.read_text("utf-8")
            if len(text) > MAX_PROMPT_FILE_CHARS:
                raise ConfigError(f"prompt file {task}/{version}/{p.name} is too large")
            templates[p.name[:-3]] = text
        elif p.name == "examples.json":
            try:
                examples = json.loads(p.read_text("utf-8"))
            except json.JSONDecodeError as e:
                raise ConfigError(f"prompt {task}/{version}/examples.json is not valid JSON: {e}") from None
            if not isinstance(examples, list):
                raise ConfigError(f"prompt {task}/{version}/examples.json must be a list")
    return PromptSet(task, version, templates, examples)


def file_digests(task: str, version: str) -> dict[str, str]:
    """sha256 of every file of a prompt version (what ``RELEASED.json`` pins)."""
    root = resources.files(__package__).joinpath(task, version)
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.iterdir(), key=lambda p: p.name)
        if p.is_file()
    }


def released() -> dict[str, dict[str, str]]:
    """``{"task/version": {file: sha256}}`` for every released prompt version."""
    data = resources.files(__package__).joinpath("RELEASED.json").read_text("utf-8")
    return json.loads(data)
