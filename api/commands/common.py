"""Helpers shared by several command groups."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.container import Services
    from api.settings import Settings
    from scoring.model import ScoringModel


def resolve_model(explicit: Path | None, settings: Settings, *, tenant: str = "default") -> ScoringModel:
    """The model a command should score with (the container's model access, api/container.py): ``--model
    FILE``, then ``HEALTHTRACE_MODEL_FILE``, then the model activated in the stored memory (``healthtrace
    models activate``), then the bundled default. Looking for an active model never creates a store."""
    from api.container import build_services

    with build_services(settings) as services:
        return services.model(explicit, tenant=tenant)


def services() -> Services:
    """The container of this command, from the environment's settings (close it, or use ``with``)."""
    from api.container import build_services

    return build_services()
