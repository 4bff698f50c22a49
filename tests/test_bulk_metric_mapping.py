"""The bulk ledger reader (``bulk_inputs_from_ledger``, a whole tenant in a few queries) reads usage through the
metric mapping exactly as the per-account readers do: a workspace whose export uses its own metric names and
units (tests/unfamiliar_workspace.py) and a metrics.yaml scores the same through the bulk reader, the
per-account reader the API uses (``inputs_for_account``) and the tenant reader (``inputs_from_ledger``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory.ingest import IngestOptions, ingest_workspace
from memory.ledger import Ledger
from memory.metric_files import read_mapping_file
from memory.scoring_inputs import bulk_inputs_from_ledger, inputs_for_account, inputs_from_ledger
from scoring.batch import score_inputs, score_totals
from scoring.model import default_model
from tests.unfamiliar_workspace import D1, D2, STORIES, write_workspace

MAPPING = """\
metrics:
  weekly_active_users: active_users
  licenses: seats_contracted
  ai_suggestions_accepted_pct: {canonical: output_acceptance_rate, unit: percent}
  internal_widget_count: ignore
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("bulk")
    ws = write_workspace(root / "ws", mapping=MAPPING)
    led = Ledger(f"sqlite:///{root / 'h.db'}")
    ingest_workspace(led, ws, IngestOptions(extractor="rules", vectors=False))
    # a CSM rejects one signal: no reader may count it
    sig = next(s for aid in sorted(STORIES) for s in led.signals_for(aid) if s.extractor != "metadata")
    led.review_signal(sig.id, "reject", "not what the customer meant")
    yield led, read_mapping_file(ws / "metrics.yaml")
    led.close()


def _per_account(led: Ledger, model, mapping, day):  # type: ignore[no-untyped-def]
    out = {}
    for acc in led.list_accounts():
        inp = inputs_for_account(led, acc, day, model=model, mapping_file=mapping)
        for r in score_inputs(inp, model, [day], digest=False):
            out[r.account_id] = r.total_h
    return out


def test_bulk_reader_maps_metrics_like_the_per_account_reader(stored) -> None:  # type: ignore[no-untyped-def]
    led, mapping = stored
    model = default_model()
    for day in (D1, D2):
        bulk = bulk_inputs_from_ledger(led, until=day, model=model, mapping_file=mapping)
        assert bulk.metric_mapping is not None and not bulk.metric_mapping.is_identity()
        assert "active_users" in bulk.usage.metric_names and "weekly_active_users" not in bulk.usage.metric_names
        by_bulk = {r.account_id: r.total_h for r in score_inputs(bulk, model, [day], digest=False)}
        assert by_bulk == _per_account(led, model, mapping, day)
        tenant = inputs_from_ledger(led, until=day, model=model, mapping_file=mapping)
        assert score_totals(bulk, model, [day]) == score_totals(tenant, model, [day])
        assert sorted(bulk.signals) == sorted(tenant.signals)
        assert {a: [s.id for s in ss] for a, ss in bulk.signals.items()} == \
            {a: [s.id for s in ss] for a, ss in tenant.signals.items()}  # the rejected signal left out of both


def test_without_the_mapping_the_export_names_score_differently(stored) -> None:  # type: ignore[no-untyped-def]
    """The check above can fail: reading the raw export names gives other scores."""
    led, mapping = stored
    model = default_model()
    mapped = score_totals(bulk_inputs_from_ledger(led, until=D2, model=model, mapping_file=mapping), model, [D2])
    raw = score_totals(bulk_inputs_from_ledger(led, until=D2), model, [D2])
    assert mapped != raw
