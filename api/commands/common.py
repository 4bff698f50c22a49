"""Helpers shared by several command groups."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.settings import Settings
    from scoring.model import ScoringModel


def resolve_model(explicit: Path | None, settings: Settings, *, tenant: str = "default") -> ScoringModel:
    """The model a command should score with, most specific first: ``--model FILE``, then
    ``HEALTHTRACE_MODEL_FILE``, then the model activated in the stored memory (``healthtrace models activate``),
    then the bundled default. Looking for an active model never creates a store."""
    from scoring.model import load_model, parse_model

    if explicit is not None or settings.model_file is not None:
        return load_model(explicit or settings.model_file)
    if settings.database_url or (Path(settings.home) / "healthtrace.db").exists():
        import yaml

        from memory.feedback import FeedbackStore
        from memory.ledger import Ledger

        ledger = Ledger.from_settings(settings)
        try:
            active = FeedbackStore(ledger).active_model_yaml(tenant=tenant)
        finally:
            ledger.close()
        if active is not None:
            model_id, version, text = active
            return parse_model(yaml.safe_load(text), source=f"stored model {model_id}@{version}")
    return load_model(None)
