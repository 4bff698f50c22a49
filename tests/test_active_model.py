"""The model a command scores with: --model, HEALTHTRACE_MODEL_FILE, the activated stored model, the default."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app
from api.commands.common import resolve_model
from api.settings import get_settings
from memory.feedback import FeedbackStore
from memory.ledger import Ledger
from scoring.model import default_model, dump_model

WORKSPACE = Path(__file__).parent / "fixtures" / "workspace_small"


def _variant(version: str) -> tuple[object, str]:
    data = yaml.safe_load(dump_model(default_model()))
    data["id"], data["version"] = "team-tuned", version
    text = yaml.safe_dump(data, sort_keys=False)
    from scoring.model import parse_model

    return parse_model(data), text


def test_without_a_store_the_default_model_is_used_and_no_store_is_created(tmp_path: Path) -> None:
    settings = get_settings()
    assert resolve_model(None, settings).id == default_model().id
    assert not (Path(settings.home) / "healthtrace.db").exists()


def test_activated_model_is_used_by_score_and_an_explicit_file_wins(tmp_path: Path) -> None:
    settings = get_settings()
    ledger = build_services(settings).ledger
    try:
        model, text = _variant("2")
        FeedbackStore(ledger).register_model(model, text, activate=True)
    finally:
        ledger.close()
    assert resolve_model(None, settings).version == "2"

    res = CliRunner().invoke(
        app, ["score", "--workspace", str(WORKSPACE), "--as-of", "2026-06-30", "--format", "jsonl"]
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    assert rows and {(r["model_id"], r["model_version"]) for r in rows} == {("team-tuned", "2")}

    explicit = tmp_path / "m.yaml"
    explicit.write_text(dump_model(default_model()), "utf-8")
    assert resolve_model(explicit, settings).id == default_model().id
