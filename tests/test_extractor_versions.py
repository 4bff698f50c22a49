"""Extractor versions like scoring models: ``extractor fit`` learns from CSM verdicts, versions are listed, one
is active per tenant, and the active version's artefact (its hash) is what signals are extracted with.

Refits use a small corpus written in the test from the taxonomy (tests/small_corpus.py) and 3 folds, so one
fit takes seconds (a refit on the shipped corpus of 8,530 sentences takes about 95 s on 2 cores).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from small_corpus import write_small_corpus
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from api.settings import get_settings
from extractors.errors import ConfigError, InputError, NotFoundError
from extractors.grounding import citation_for_span
from extractors.models import Account, Signal, SourceDocument
from memory import ledger as ledger_mod
from memory.extractor_versions import BUNDLED, ExtractorVersions
from memory.ledger import Ledger

CONTRACT = "We have decided not to renew the contract when it ends in June."
PARKING = "We have decided not to renew the parking permits for the old office, the garage closes anyway."
DEPARTED = "Marcus has left the company and his last day was Friday."
EMAIL = f"""From: Priya Shah <priya@acme.example>
To: Sam <sam@vendor.example>
Subject: Renewal
Date: Fri, 1 Mar 2024 09:00:00 +0000

Hi Sam,

{CONTRACT}
{PARKING}
{DEPARTED}

Best regards,
Priya
"""


def _run(args: list[str]) -> Any:
    from api.cli import app

    get_settings.cache_clear()
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, (args, r.output, r.exception)
    return r


def _json(args: list[str]) -> Any:
    return json.loads(_run([*args, "--format", "json"]).stdout)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_small_corpus(tmp_path / "corpus")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "documents" / "acme").mkdir(parents=True)
    (ws / "accounts.csv").write_text("account_id,name\nacme,Acme Ltd\n")
    (ws / "documents" / "acme" / "2024-03-01-renewal.txt").write_text(EMAIL)
    return ws


def _extract(path: Path) -> list[dict[str, Any]]:
    out = _run(["extract", "-f", "jsonl", str(path)]).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _types_of(records: list[dict[str, Any]], sentence: str) -> set[str]:
    return {r["type"] for r in records if r["evidence"] and r["evidence"][0]["quote"] == sentence}


def test_fit_learns_from_verdicts_and_the_active_version_decides(corpus: Path, workspace: Path,
                                                                 _isolated_home: Path) -> None:
    doc = workspace / "documents" / "acme" / "2024-03-01-renewal.txt"
    # version A: the same small corpus, no verdicts yet; activated (better than the bundled rule on it)
    a = _json(["extractor", "fit", "--corpus", str(corpus), "--folds", "3", "--activate"])
    assert a["activated"] and a["report"]["training"]["confirmed"] == 0
    _run(["ingest", "-w", str(workspace), "--no-vectors", "--no-score"])
    led = Ledger.open(None, home=_isolated_home)
    stored = led.signals_for("acme")
    assert {s.extractor_version.split(".m1-", 1)[-1][:8] for s in stored} == {a["sha256"][:8]}
    by_quote = {(s.evidence[0].quote, s.type): s for s in stored}
    # A tags the parking-permit sentence as churn intent: the precondition of what B must unlearn
    assert (PARKING, "churn_intent") in by_quote and (CONTRACT, "churn_intent") in by_quote
    _run(["signal", "reject", by_quote[(PARKING, "churn_intent")].id, "--reason", "parking permits, not our contract"])
    _run(["signal", "confirm", by_quote[(CONTRACT, "churn_intent")].id, "--reason", "the renewal itself"])
    led.close()

    # version B: A's corpus plus the two verdicts; registered inactive, with per-type figures old vs new
    b = _json(["extractor", "fit", "--corpus", str(corpus), "--folds", "3"])
    assert not b["activated"] and b["baseline"] == a["version"]
    rep = b["report"]
    assert rep["training"]["confirmed"] == 1 and rep["training"]["rejected"] == 1
    cmp = rep["comparison"]
    assert cmp["folds"] == 3 and cmp["extra_sentences"] == 2
    for side in ("old", "new"):
        figs = cmp[side]["all"]["types"]["churn_intent"]
        assert set(figs) >= {"precision", "recall", "f1", "support"} and figs["support"] >= 15
    # on the tenant's own examples (out of fold): the old fit tags the rejected sentence, the new one not
    assert cmp["old"]["extra"]["micro"]["precision"] < cmp["new"]["extra"]["micro"]["precision"]
    assert cmp["rejected_examples"] == 1 and cmp["old"]["rejected_still_tagged"] == 1
    assert cmp["new"]["rejected_still_tagged"] == 0
    listed = {v["version"]: v for v in _json(["extractor", "versions"])}
    assert set(listed) == {BUNDLED, a["version"], b["version"]}
    assert [v for v, r in listed.items() if r["active"]] == [a["version"]]
    assert listed[b["version"]]["origin"] == "fit" and listed[b["version"]]["report"]["comparison"]
    assert (_isolated_home / listed[b["version"]]["path"] / "sentence_model.npz").is_file()
    table = _run(["extractor", "versions"]).stdout
    assert b["version"] in table and f"* {a['version']}" in table

    before = _extract(doc)
    assert "churn_intent" in _types_of(before, PARKING)
    _run(["extractor", "activate", b["version"]])
    after = _extract(doc)
    assert {r["extractor_version"].split(".m1-", 1)[-1][:8] for r in after} == {b["sha256"][:8]}
    assert "churn_intent" not in _types_of(after, PARKING)  # the rejected example is learnt ...
    assert "churn_intent" in _types_of(after, CONTRACT)  # ... without losing the type
    assert "champion_departed" in _types_of(after, DEPARTED)

    # back to the package's artefact: its stamp again, and exactly one active version
    _run(["extractor", "activate", BUNDLED])
    from extractors.learned import model_stamp

    assert {r["extractor_version"].rsplit(".", 1)[-1] for r in _extract(doc)} == {model_stamp()}
    assert [v["version"] for v in _json(["extractor", "versions"]) if v["active"]] == [BUNDLED]


def test_fit_activate_only_when_not_worse_unless_forced(corpus: Path, _isolated_home: Path) -> None:
    first = _json(["extractor", "fit", "--corpus", str(corpus), "--folds", "3", "--activate"])
    assert first["activated"] is first["not_worse"]
    # the same corpus again is exactly as good (same folds, same artefact): never worse
    again = _json(["extractor", "fit", "--corpus", str(corpus), "--folds", "3", "--activate"])
    assert again["sha256"] == first["sha256"] or not first["activated"]
    assert again["not_worse"] is (again["report"]["comparison"]["delta_micro_f1"] >= 0)
    assert again["activated"] is again["not_worse"]


def test_fit_refuses_worse_unless_forced(monkeypatch: pytest.MonkeyPatch, corpus: Path) -> None:
    from api import extractor_training as T
    from api.container import build_services

    monkeypatch.setattr("extractors.retrain.not_worse", lambda cmp, tolerance=0.0: False)
    with build_services() as s:
        res = T.fit_extractor(s, corpus=corpus, folds=3, activate=True)
        assert not res["activated"] and "--force" in res["reason"]
        assert s.extractor_versions.active()["version"] == BUNDLED
        forced = T.fit_extractor(s, corpus=corpus, folds=3, activate=True, force=True)
        assert forced["activated"] and s.extractor_versions.active()["version"] == forced["version"]
        # nothing stored is lost: both versions and their folders are still there
        assert {res["version"], forced["version"]} <= {v["version"] for v in s.extractor_versions.versions()}
        assert all(s.extractor_versions.directory(v) is None or s.extractor_versions.directory(v).is_dir()
                   for v in s.extractor_versions.versions())


def test_fit_bounds_the_feedback(corpus: Path) -> None:
    from api import extractor_training as T
    from api.container import build_services

    with build_services() as s, pytest.raises(InputError, match="max-feedback"):
        T.fit_extractor(s, corpus=corpus, max_feedback=10**9)


# ----------------------------------------------------------------------------------------- registry
@pytest.fixture
def url(ledger_url: str) -> str:
    return ledger_url


def _artefact(tmp_path: Path, name: str, fill: float) -> Path:
    """A loadable artefact with its own content: the shipped one with one stage-1 threshold moved."""
    from extractors.learned import load_model

    model, meta = load_model()
    model.t1 = float(model.t1 + fill)
    d = tmp_path / name
    d.mkdir()
    extra = {k: meta[k] for k in ("model_version", "corpus_sha256", "corpus_sentences") if k in meta}
    model.save(d / "sentence_model.npz", d / "sentence_model.json", extra)
    return d


def _seed(led: Ledger) -> str:
    doc = SourceDocument(kind="email", account_id="a1", path="m.eml", text=f"Hello.\n{CONTRACT}\n")
    led.upsert_accounts([Account(account_id="a1", name="A")])
    led.add_document(doc)
    start = doc.text.index(CONTRACT)
    sig = Signal(account_id="a1", type="churn_intent", evidence=[citation_for_span(doc, start, start + len(CONTRACT))],
                 extractor="learned", extractor_version="1", source_id=doc.id)
    led.add_signals([sig])
    led.review_signal(sig.id, "confirm", "right")
    return sig.id


def test_migration_0007_on_a_database_with_data(url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    led = Ledger(url)
    sid = _seed(led)
    reg = ExtractorVersions(led, home)
    v1 = reg.register(_artefact(tmp_path, "one", 0.01), origin="fit", report={"x": 1})
    reg.activate(v1["version"])
    # an older database: the table and its migration record gone, everything else in place
    with led.write() as conn:
        conn.execute(text("DROP TABLE extractor_versions"))
        conn.execute(text("DELETE FROM schema_migrations WHERE name = '0007_extractor_versions'"))
    led.close()
    led = Ledger(url)
    assert led.applied_migrations() == sorted(name for name, _ in ledger_mod.MIGRATIONS)
    assert [s.id for s in led.signals_for("a1")] == [sid]
    assert [r["verdict"] for r in led.signal_reviews()] == ["confirm"]
    reg = ExtractorVersions(led, home)
    assert [v["version"] for v in reg.versions()] == [BUNDLED] and reg.active()["version"] == BUNDLED
    v2 = reg.register(_artefact(tmp_path, "two", 0.02), origin="distill", report={"agreement": {"micro": 0.5}})
    v3 = reg.register(_artefact(tmp_path, "three", 0.03), origin="fit", report=None, tenant="other")
    v4 = reg.register(_artefact(tmp_path, "four", 0.04), origin="fit")
    reg.activate(v2["version"])
    reg.activate(v3["version"], tenant="other")
    led.close()
    led = Ledger(url)  # reopening migrates nothing and loses nothing
    reg = ExtractorVersions(led, home)
    assert [v["version"] for v in reg.versions()] == [BUNDLED, v2["version"], v4["version"]]
    assert [v["version"] for v in reg.versions(tenant="other")] == [BUNDLED, v3["version"]]
    assert reg.active()["version"] == v2["version"] and reg.active(tenant="other")["version"] == v3["version"]
    assert reg.get(v2["version"])["report"] == {"agreement": {"micro": 0.5}}
    assert reg.active_dir() == home / "extractors" / v2["version"]
    # at most one active per tenant, held by the database itself
    with pytest.raises(IntegrityError), led.engine.begin() as conn:
        conn.execute(ledger_mod.ExtractorVersionRow.__table__.update()
                     .where(ledger_mod.ExtractorVersionRow.__table__.c.version == v4["version"])
                     .values(active=True))
    assert [v["version"] for v in reg.versions() if v["active"]] == [v2["version"]]
    led.close()


def test_registry_refuses_unknown_and_altered_versions(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    reg = ExtractorVersions(led, tmp_path / "home")
    with pytest.raises(NotFoundError):
        reg.activate("fit-nope")
    with pytest.raises(InputError):
        reg.register(_artefact(tmp_path, "a", 0.01), origin="bundled")
    v = reg.register(_artefact(tmp_path, "b", 0.02), origin="fit")
    d = reg.directory(v)
    (d / "sentence_model.npz").write_bytes(b"tampered")
    with pytest.raises(ConfigError, match="sha256"):
        reg.activate(v["version"])
    assert reg.active()["version"] == BUNDLED
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(ConfigError, match="missing"):
        reg.register(broken, origin="fit")
    led.close()


def test_learned_extractor_loads_an_injected_artefact(tmp_path: Path) -> None:
    from extractors.base import get_extractor
    from extractors.learned import VERSION, LearnedExtractor, model_stamp

    d = _artefact(tmp_path, "custom", 0.05)
    sha8 = json.loads((d / "sentence_model.json").read_text())["sha256"][:8]
    ex = LearnedExtractor(model_dir=d)
    stamp = model_stamp(d)  # m1-<sha8>, then -s<digest> of the decision scale the artefact carries
    assert stamp.split("-s")[0] == f"m1-{sha8}" and ex.version.endswith(stamp) and ex.version != VERSION
    off = get_extractor("offline", model_dir=d)
    assert off.version.endswith(stamp)
    doc = SourceDocument(kind="email", text=f"Hi,\n{CONTRACT}\nThanks\n")
    assert all(s.extractor_version == ex.version for s in ex.extract(doc))
    moved = tmp_path / "moved"
    shutil.copytree(d, moved)
    (moved / "sentence_model.npz").write_bytes(b"x")
    with pytest.raises(ConfigError, match="does not match"):
        LearnedExtractor(model_dir=moved)


def test_a_verdict_overrides_the_corpus_label() -> None:
    from extractors.refit import merge_records

    corpus = [{"text": CONTRACT, "labels": ["churn_intent"], "genre": "email", "group": "c:0"}]
    out = merge_records(corpus, [
        {"text": CONTRACT.upper(), "labels": [], "rejected": ["churn_intent"], "group": "feedback:d1", "weight": 5.0},
        {"text": PARKING, "labels": ["blocker"], "group": "feedback:d2"},
    ])
    assert out[0]["labels"] == [] and out[0]["weight"] == 5.0 and out[0]["group"] == "c:0"
    assert out[0]["rejected"] == ["churn_intent"]
    assert out[1]["labels"] == ["blocker"] and out[1]["group"] == "feedback:d2"
    with pytest.raises(InputError, match="unknown signal type"):
        merge_records(corpus, [{"text": "x y z", "labels": ["nope"]}])


def test_the_container_hands_the_active_artefact_to_the_extractors(tmp_path: Path, _isolated_home: Path) -> None:
    from api.container import build_services

    with build_services() as s:
        assert s.extractor_options("offline") == {} and s.ingest_options().extractor_options == {}
    assert not (_isolated_home / "healthtrace.db").exists()  # looking created no store
    with build_services() as s:
        reg = s.extractor_versions
        v = reg.register(_artefact(tmp_path, "c", 0.01), origin="fit", tenant="acme")
        reg.activate(v["version"], tenant="acme")
        want = {"model_dir": _isolated_home / v["path"]}
        assert s.extractor_options("learned", tenant="acme") == want
        assert s.ingest_options(tenant="acme").extractor_options == want
        assert s.ingest_options(tenant="default").extractor_options == {}  # another tenant keeps the bundled one
        assert s.extractor_options("rules", tenant="acme") == {}


def test_api_lists_and_activates_extractor_versions(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.testing import make_settings, seed_tenant

    app = create_app(make_settings(), webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        st = app.state.ht
        seeded = seed_tenant(client, st.store, st.service, "acme")
        r = client.get("/v1/extractors", headers=seeded.read)
        assert r.status_code == 200 and [(v["version"], v["active"]) for v in r.json()["versions"]] == [(BUNDLED, True)]
        reg = st.service.extractor_versions
        v = reg.register(_artefact(tmp_path, "api", 0.01), origin="fit", tenant="acme")
        url = f"/v1/extractors/{v['version']}/activate"
        assert client.post(url, headers=seeded.read).status_code == 403  # a read key cannot switch
        r = client.post(url, headers=seeded.write)
        assert r.status_code == 200, r.text
        assert [x["version"] for x in r.json()["versions"] if x["active"]] == [v["version"]]
        assert client.post("/v1/extractors/fit-nope/activate", headers=seeded.write).status_code == 404
        opts = st.service._ingest_options("acme")  # the API's ingest now extracts with the new artefact
        assert opts.extractor_options.get("model_dir") == reg.directory(v)


def test_fit_errors_are_clear(tmp_path: Path) -> None:
    from api import extractor_training as T
    from api.container import build_services

    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "corpus_tiny.jsonl").write_text(json.dumps({"text": CONTRACT, "labels": ["churn_intent"]}) + "\n"
                                            + json.dumps({"text": "Thanks, see you Tuesday.", "labels": []}) + "\n")
    with build_services() as s:
        with pytest.raises(InputError, match="folds"):
            T.fit_extractor(s, corpus=tiny, folds=5)
        with pytest.raises(InputError, match="no training corpus"):
            T.fit_extractor(s, corpus=tmp_path / "none", folds=3)
        assert [v["version"] for v in s.extractor_versions.versions()] == [BUNDLED]  # nothing registered
