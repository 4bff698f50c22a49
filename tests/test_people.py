"""People and sides: vendor domains configured as a plain list or in the workspace, else inferred once
across the whole workspace (never per account); one identity per person; our CSM is not a customer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app
from api.settings import Settings, get_settings
from extractors.metadata import MetadataExtractor, infer_vendor_domains
from extractors.parsers import load_document, parse_text
from memory.ledger import Ledger
from memory.scoring_inputs import inputs_for_account, inputs_from_workspace
from memory.workspace import load_workspace
from scoring.facts import document_facts

ROOT = Path(__file__).resolve().parent.parent


def mail(frm: str, to: str, when: str, subject: str, body: str) -> str:
    return f"From: {frm}\r\nTo: {to}\r\nDate: {when}\r\nSubject: {subject}\r\n\r\n{body}\r\n"


ANA = "Ana Souza <ana@acme.io>"  # our CSM, in every account


def customer_heavy(account: str, domain: str, last_from_customer: bool) -> list[tuple[str, str]]:
    """(file name, text): the customer writes most of the mail; our CSM writes twice."""
    cust = f"Kim Lee <kim@{domain}>"
    files = [(f"2024-01-{d:02d}-c.eml", mail(cust, ANA, f"{d:02d} Jan 2024 10:00:00 +0000", f"Question {d}",
                                             f"Another question about reports, number {d}."))
             for d in (3, 5, 8, 10, 12)]
    files.append(("2024-01-04-v.eml", mail(ANA, cust, "04 Jan 2024 10:00:00 +0000", "Re: Question 3", "Answered.")))
    files.append(("2024-01-09-v.eml", mail(ANA, cust, "09 Jan 2024 10:00:00 +0000", "Re: Question 8", "Answered.")))
    if not last_from_customer:
        files.append(("2024-01-20-v.eml", mail(ANA, cust, "20 Jan 2024 10:00:00 +0000", "Checking in",
                                               "Could we meet next week to review the rollout?")))
    return files


def make_workspace(root: Path, *, vendor_file: str | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "accounts.csv").write_text("account_id,name,start_date,end_date,segment\n"
                                       "globex,Globex,2023-01-01,2025-01-01,smb\ninitech,Initech,2023-01-01,2025-01-01,smb\n")
    for account, domain, replied in (("globex", "globex.com", True), ("initech", "initech.com", False)):
        d = root / "documents" / account
        d.mkdir(parents=True)
        for name, text in customer_heavy(account, domain, replied):
            (d / name).write_bytes(text.encode())
        (d / "2024-02-20-notes.md").write_text("# Internal review\n\nReviewed the account plan.\n")
    if vendor_file is not None:
        (root / "vendor_domains.txt").write_text(vendor_file)
    return root


# ------------------------------------------------------------------------------------------- settings
def test_vendor_domains_setting_is_a_plain_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHTRACE_VENDOR_DOMAINS", "Acme.io, @acme.com,acme.io")
    assert Settings().vendor_domains == ["acme.io", "acme.com"]
    monkeypatch.setenv("HEALTHTRACE_VENDOR_DOMAINS", '["acme.io"]')  # the JSON form still works
    assert Settings().vendor_domains == ["acme.io"]


@pytest.mark.parametrize("value,ok", [("acme.io", True), ("acme.io,b.io", True), ("not a domain!", False)])
def test_cli_reads_the_setting_or_names_it_in_one_line(tmp_path: Path, value: str, ok: bool) -> None:
    env = {**os.environ, "HEALTHTRACE_HOME": str(tmp_path), "HEALTHTRACE_VENDOR_DOMAINS": value}
    res = subprocess.run([sys.executable, "-m", "api.cli", "stats", "--format", "json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert "Traceback" not in res.stderr
    if ok:
        assert res.returncode == 0, res.stderr
    else:
        assert res.returncode == 1 and "HEALTHTRACE_VENDOR_DOMAINS" in res.stderr
        assert len(res.stderr.strip().splitlines()) <= 2


def test_workspace_vendor_file(tmp_path: Path) -> None:
    ws = load_workspace(make_workspace(tmp_path / "ws", vendor_file="# our domains\nacme.io, acme.com\nnot_a domain\n"))
    assert ws.vendor_domains == ("acme.io", "acme.com")
    assert any("vendor_domains.txt" in str(p) for p in ws.problems)


# ------------------------------------------------------------------------------------------- inference
def _docs(root: Path) -> dict[str, list]:
    return {a: [load_document(p, account_id=a) for p in sorted((root / "documents" / a).iterdir())]
            for a in ("globex", "initech")}


def test_vendor_inferred_once_across_accounts_even_when_customers_write_most(tmp_path: Path) -> None:
    docs = _docs(make_workspace(tmp_path / "ws"))
    assert infer_vendor_domains(docs) == ("acme.io",)
    assert infer_vendor_domains({"globex": docs["globex"]}) == ()  # one account: nothing to tell them apart


def test_customer_replies_never_count_as_silence(tmp_path: Path) -> None:
    docs = _docs(make_workspace(tmp_path / "ws"))
    ex = MetadataExtractor(vendor_domains=infer_vendor_domains(docs), vendor_inferred=True)
    as_of = date(2024, 3, 1)
    replied = [s.type for s in ex.extract_account(docs["globex"], as_of=as_of)]
    assert "unresponsive" not in replied  # the customer wrote last: they did reply
    silent = [s for s in ex.extract_account(docs["initech"], as_of=as_of) if s.type == "unresponsive"]
    assert len(silent) == 1
    doc = next(d for d in docs["initech"] if d.id == silent[0].source_id)
    raw = Path(doc.path).read_bytes().decode("utf-8", errors="replace")
    for c in silent[0].evidence:
        assert raw[c.start : c.end] == c.quote
    # without any known sides: no guess inside the account, so no vendor-relative signal
    assert MetadataExtractor().extract_account(docs["globex"], as_of=as_of) == []


def test_readers_infer_for_the_whole_workspace(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws")
    inputs = inputs_from_workspace(load_workspace(root))
    assert inputs.vendor_domains == ("acme.io",)
    assert inputs.derive is not None
    globex = [s.type for s in inputs.derive(inputs.documents["globex"], date(2024, 3, 1))]
    assert "unresponsive" not in globex
    configured = inputs_from_workspace(load_workspace(make_workspace(tmp_path / "ws2", vendor_file="acme.io\n")))
    assert configured.vendor_domains == ("acme.io",)


def test_ingest_infers_once_and_stores_no_false_silence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHTRACE_EMBEDDER", "hashing")
    monkeypatch.delenv("HEALTHTRACE_VENDOR_DOMAINS", raising=False)
    get_settings.cache_clear()
    root = make_workspace(tmp_path / "ws")
    res = CliRunner().invoke(app, ["ingest", "--workspace", str(root), "--no-vectors", "--format", "json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert any("acme.io" in n for n in report["notes"])
    ledger = build_services(get_settings()).ledger
    try:
        assert "unresponsive" not in {s.type for s in ledger.signals_for("globex") if s.extractor == "metadata"}
        # a per-account reader (the API, why) gets the workspace-wide answer, not a guess from one account
        account = ledger.get_account("globex")
        inputs = inputs_for_account(ledger, account, date(2024, 3, 1))
        assert inputs.vendor_domains == ("acme.io",)
        assert inputs.derive is not None
        assert "unresponsive" not in {s.type for s in inputs.derive(inputs.documents["globex"], date(2024, 3, 1))}
    finally:
        ledger.close()


# ------------------------------------------------------------------------------------------- identities
def test_one_identity_per_person_and_our_csm_is_not_a_contact(tmp_path: Path) -> None:
    email = parse_text(mail("Lily Ng <lily.ng@globex.com>", ANA, "01 Mar 2024 10:00:00 +0000", "Hi", "Hello."),
                       path="a.eml", account_id="globex")
    call = parse_text("WEBVTT\n\nNOTE\nDate: 2024-03-05\n\n00:00:01.000 --> 00:00:03.000\n<v Ana Souza>Welcome.\n\n"
                      "00:00:04.000 --> 00:00:06.000\n<v Lily Ng>Thanks.\n\n00:00:07.000 --> 00:00:09.000\n"
                      "<v lily.ng>Also me.\n", path="call.vtt", account_id="globex")
    notes = parse_text("# Sync\n\nDate: 2024-03-06\nAttendees: Ana Souza, Raj Patel (Globex)\n\nAll good.\n",
                       path="n.md", account_id="globex")
    assert call.occurred_at is not None and notes.occurred_at is not None
    facts, undated = document_facts([email, call, notes], date(2024, 3, 10), vendor_domains=("acme.io",))
    assert undated == 0
    # Lily (address, display name, handle) is one person, Raj from the attendee line is another; Ana is ours
    assert facts["distinct_contacts_90d"].value == 2
