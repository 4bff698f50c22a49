"""The one wiring (api/container.py) and the repository protocols (memory/repositories.py).

* the real Ledger and VectorMemory satisfy the protocols, method by method and parameter by parameter, and so
  do the in-memory fakes (memory/fakes.py);
* ingest -> score -> why runs through the container on the fakes with no SQLite file and no Chroma folder,
  and gives the same scores and drivers as the same flow on SQLite;
* settings are read in the container only.
"""

from __future__ import annotations

import ast
import inspect
from datetime import date, timedelta
from pathlib import Path

import pytest

from api.container import build_services
from api.testing import make_settings, sample_email
from extractors.models import Account, UsagePoint
from memory.fakes import InMemoryLedger, InMemoryModelRecords, InMemoryVectorMemory
from memory.feedback import FeedbackStore
from memory.ledger import Ledger
from memory.repositories import LedgerRepository, ModelRecords, VectorRepository, protocol_methods
from memory.vectors import VectorMemory

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = Path(__file__).parent / "fixtures" / "workspace_small"
DAY = date(2026, 6, 30)


def _params(fn: object) -> list[tuple[str, object, bool]]:
    """(name, kind, has a default) of each parameter but self."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty)
            for p in sig.parameters.values() if p.name != "self"]


@pytest.mark.parametrize(("proto", "impls"), [
    (LedgerRepository, (Ledger, InMemoryLedger)),
    (VectorRepository, (VectorMemory, InMemoryVectorMemory)),
    (ModelRecords, (FeedbackStore, InMemoryModelRecords)),
])
def test_real_stores_and_fakes_satisfy_the_protocols(proto: type, impls: tuple[type, ...]) -> None:
    names = protocol_methods(proto)
    assert len(names) >= 5
    for impl in impls:
        for name in names:
            assert callable(getattr(impl, name, None)), f"{impl.__name__} lacks {name}"
            want, got = _params(getattr(proto, name)), _params(getattr(impl, name))
            # same names, kinds and optional-ness: a caller written against the protocol works on both
            assert [(n, k) for n, k, _ in want] == [(n, k) for n, k, _ in got], f"{impl.__name__}.{name}"
            assert [d for *_, d in want] == [d for *_, d in got], f"{impl.__name__}.{name} defaults"


def test_runtime_isinstance_holds_for_real_objects_and_fakes(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        assert isinstance(led, LedgerRepository)
        assert isinstance(FeedbackStore(led), ModelRecords)
    finally:
        led.close()
    assert isinstance(InMemoryLedger(), LedgerRepository)
    assert isinstance(InMemoryVectorMemory(), VectorRepository)
    assert not isinstance(object(), LedgerRepository)


def _flow(services: object) -> dict[str, object]:
    """Accounts, usage and one email through the container's service; rescore two days; why between them."""
    svc = services.health  # type: ignore[attr-defined]
    tenant, aid = "default", "acme"
    svc.upsert_accounts(tenant, [Account(account_id=aid, name="Acme", segment="mid-market",
                                         start_date=DAY - timedelta(days=400))])
    points = []
    for i, back in enumerate(range(91, -1, -7)):
        points.append(UsagePoint(account_id=aid, date=DAY - timedelta(days=back), metric="active_users",
                                 value=100 - 5 * i))
        points.append(UsagePoint(account_id=aid, date=DAY - timedelta(days=back), metric="seats_contracted",
                                 value=120))
    svc.ingest_usage(tenant, points)
    from api.routes.ingest import _parse

    doc = _parse(sample_email("acme", DAY - timedelta(days=3)), "email", "acme/renewal.eml", aid, tenant)
    added, signals, _rescored, failures = svc.ingest_documents_report(tenant, [doc])
    again = svc.ingest_documents_report(tenant, [doc])
    before = svc.rescore(tenant, aid, as_of=DAY - timedelta(days=30)).score
    after = svc.rescore(tenant, aid, as_of=DAY).score
    story = svc.why(tenant, aid, since=DAY - timedelta(days=30), as_of=DAY)
    return {"added": added, "signals": signals, "failures": failures, "again_added": again[0],
            "before": before.score, "after": after.score, "tier": after.tier,
            "drivers": [(d.kind, d.key, round(d.points, 6), len(d.citations)) for d in story.drivers],
            "delta": story.delta}


def test_ingest_score_and_why_run_on_the_fakes_without_sqlite_or_chroma(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ledger = InMemoryLedger()
    with build_services(make_settings(home=home), ledger=ledger, vectors=InMemoryVectorMemory(),
                        feedback=InMemoryModelRecords()) as services:
        assert services.ledger is ledger and services.store is None  # no SQL store behind a fake ledger
        out = _flow(services)
    assert out["added"] == 1 and out["signals"] >= 1 and out["failures"] == [] and out["again_added"] == 0
    assert out["after"] < out["before"]  # declining usage and a churn threat since the earlier day
    assert any(kind == "signal" and n_cites >= 1 for kind, _, _, n_cites in out["drivers"])
    assert not (home / "healthtrace.db").exists() and not (home / "chroma").exists()
    assert ledger.counts()["score_snapshots"] >= 2


def test_the_fakes_give_the_scores_and_drivers_sqlite_gives(tmp_path: Path) -> None:
    with build_services(make_settings(home=tmp_path / "a"), ledger=InMemoryLedger(),
                        feedback=InMemoryModelRecords()) as fake:
        on_fake = _flow(fake)
    with build_services(make_settings(home=tmp_path / "b")) as real:
        on_sqlite = _flow(real)
        assert isinstance(real.ledger, Ledger)
    assert on_fake == on_sqlite


def test_stored_active_model_is_read_through_the_model_records(tmp_path: Path) -> None:
    import yaml

    from scoring.model import default_model, dump_model

    data = yaml.safe_load(dump_model(default_model()))
    data["id"], data["version"] = "team-tuned", "3"
    records = InMemoryModelRecords()
    records.register("team-tuned", "3", yaml.safe_dump(data, sort_keys=False), activate=True)
    with build_services(make_settings(home=tmp_path), ledger=InMemoryLedger(), feedback=records) as services:
        assert (services.model().id, services.model().version) == ("team-tuned", "3")
        assert services.health.active_model_name("default") == "team-tuned@3"
        assert services.health.model("default").version == "3"


def test_workspace_ingest_and_evidence_search_on_the_fakes(tmp_path: Path) -> None:
    from memory.ingest import ingest_workspace
    from memory.search import search_evidence

    ledger, vectors = InMemoryLedger(), InMemoryVectorMemory()
    with build_services(make_settings(home=tmp_path), ledger=ledger, vectors=vectors) as services:
        rep = ingest_workspace(services.ledger, WORKSPACE, services.ingest_options(), vectors=services.vectors)
        again = ingest_workspace(services.ledger, WORKSPACE, services.ingest_options(), vectors=services.vectors)
    assert rep.documents_added > 0 and again.documents_added == 0 and again.signals_added == 0
    counts = vectors.counts()
    assert counts["vector_chunks"] > 0 and ledger.document_ids(indexed=False) == []
    sig = next(r["signal"] for r in ledger.signals.values() if r["signal"].evidence)
    quote = sig.evidence[0].quote
    hits = search_evidence(ledger, vectors, sig.account_id, quote, k=5)
    assert hits and any(quote in (h.get("quote") or h.get("text") or "") for h in hits)


def test_cli_and_app_share_the_container(tmp_path: Path) -> None:
    from api.app import create_app

    services = build_services(make_settings(home=tmp_path))
    app = create_app(services=services, webhooks=False, index_vectors=False)
    st = app.state.ht
    assert st.services is services and st.ledger is services.ledger and st.service is services.health
    assert st.store is services.store and st.settings is services.settings
    services.close()


SETTINGS_READERS = {"api/container.py", "api/settings.py", "api/testing.py"}


def test_settings_are_read_only_in_the_container() -> None:
    """No module but the container calls get_settings() or builds Settings(); memory and extractors never
    import api.settings (they get values)."""
    offenders = []
    for pkg in ("api", "memory", "extractors", "scoring"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            rel = str(f.relative_to(ROOT))
            if rel in SETTINGS_READERS:
                continue
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    fn = node.func
                    name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
                    if name in ("get_settings", "Settings", "from_settings"):
                        offenders.append(f"{rel}:{node.lineno} {name}()")
    assert offenders == []
