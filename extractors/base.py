"""The contract every extractor shares, and the registry the CLI and ingest use to pick one.

An extractor reads one :class:`SourceDocument` and returns signals whose citations were aligned by
:mod:`extractors.grounding`. Extractors that need an LLM take it as an injected object, never a global.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .errors import ConfigError
from .models import Signal, SourceDocument


@runtime_checkable
class Extractor(Protocol):
    name: str
    version: str

    def extract(self, doc: SourceDocument) -> list[Signal]:
        """Signals found in ``doc``; every verified citation satisfies ``doc.text[start:end] == quote``."""
        ...


_FACTORIES: dict[str, Callable[..., Extractor]] = {}


_DEFAULT_OPTIONS: dict[str, Callable[[], dict[str, object]]] = {}


def register_extractor(name: str, factory: Callable[..., Extractor]) -> None:
    _FACTORIES[name] = factory


def set_default_options(name: str, provider: Callable[[], dict[str, object]] | None) -> None:
    """Let the edge (CLI, API) supply an extractor's configuration as plain values, read when one is built.

    Options given to :func:`get_extractor` win over the provider's; extractors never read settings themselves.
    """
    if provider is None:
        _DEFAULT_OPTIONS.pop(name, None)
    else:
        _DEFAULT_OPTIONS[name] = provider


# name -> module that registers it when imported; imported lazily because the LLM stack is heavy and
# most runs only need the offline extractor.
_BUILTIN_MODULES = {"offline": "offline", "rules": "rules", "learned": "learned", "metadata": "metadata", "llm": "llm", "hybrid": "llm"}


def _load_builtin(name: str | None = None) -> None:
    import importlib

    names = [name] if name else list(_BUILTIN_MODULES)
    for n in names:
        module = _BUILTIN_MODULES.get(n)
        if module and n not in _FACTORIES:
            try:
                importlib.import_module(f"{__package__}.{module}")
            except ImportError:
                if name:
                    raise


def available_extractors() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def get_extractor(name: str = "offline", **options: object) -> Extractor:
    if name not in _FACTORIES:
        _load_builtin(name)
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ConfigError(f"unknown extractor {name!r}; available: {', '.join(available_extractors())}") from None
    provider = _DEFAULT_OPTIONS.get(name)
    if provider is not None:
        options = {**provider(), **options}
    return factory(**options)
