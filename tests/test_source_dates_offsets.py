"""Every source gets a date (its content, else the file name's leading YYYY-MM-DD, else an "undated"
warning) and every citation indexes the file as stored, JSON exports included."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.settings import get_settings
from extractors.base import get_extractor
from extractors.chunking import chunk_text
from extractors.parsers import load_document, load_documents, parse_text
from extractors.segmenter import sentence_spans, sentences
from memory.vectors import chunk_document

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_small"


def raw(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


VTT_CUES = (
    "00:00:01.000 --> 00:00:04.000\n<v Ana Souza>Thanks for joining.\n\n"
    "00:00:05.000 --> 00:00:09.000\n<v Lily Ng>We have decided not to renew the contract.\n"
)


# ------------------------------------------------------------------------------------------- dates
def test_vtt_dated_by_its_note_and_header(tmp_path: Path) -> None:
    p = write(tmp_path / "call.vtt", "WEBVTT - Globex QBR\n\nNOTE\nDate: 2024-03-12 15:00\n"
                                     "Attendees: Ana Souza (Acme), Lily Ng <lily@globex.com>\n\n" + VTT_CUES)
    doc = load_document(p)
    assert doc.occurred_at == datetime(2024, 3, 12, 15, 0, tzinfo=UTC)
    assert doc.title == "Globex QBR"
    people = {(x.name, x.address) for x in doc.participants}
    assert ("Lily Ng", "lily@globex.com") in people  # the attendee line lends the speaker an address
    assert len([x for x in doc.participants if x.name == "Lily Ng"]) == 1  # one person, one entry


def test_vtt_note_with_a_date_in_free_text(tmp_path: Path) -> None:
    p = write(tmp_path / "call.vtt", "WEBVTT\n\nNOTE Weekly sync with Globex, 14 March 2024\n\n" + VTT_CUES)
    assert load_document(p).occurred_at == datetime(2024, 3, 14, tzinfo=UTC)


@pytest.mark.parametrize("name,body", [
    ("2024-05-02-call.vtt", "WEBVTT\n\n" + VTT_CUES),
    ("2024-05-02 call.srt", "1\n00:00:01,000 --> 00:00:04,000\nAna: We are live.\n"),
    ("2024-05-02_notes.md", "# Sync\n\nBudget is frozen.\n"),
    ("2024-05-02-chat.json", json.dumps({"messages": [{"author": "ana", "text": "hello there"}]})),
])
def test_undated_content_takes_the_file_name_date(tmp_path: Path, name: str, body: str) -> None:
    doc = load_document(write(tmp_path / name, body))
    assert doc.occurred_at == datetime(2024, 5, 2, tzinfo=UTC)
    assert doc.metadata["date_from"] == "file name"


def test_content_date_wins_over_the_file_name(tmp_path: Path) -> None:
    p = write(tmp_path / "2020-01-01-call.vtt", "WEBVTT\n\nNOTE\nRecorded: 2024-03-12\n\n" + VTT_CUES)
    doc = load_document(p)
    assert doc.occurred_at == datetime(2024, 3, 12, tzinfo=UTC) and "date_from" not in doc.metadata


def test_json_transcript_dated_by_its_top_level_date(tmp_path: Path) -> None:
    data = {"title": "QBR", "date": "2024-02-20T10:00:00Z",
            "segments": [{"speaker": "Ana", "start": 0, "end": 2, "text": "Welcome."},
                         {"speaker": "Raj", "start": 2, "end": 5, "text": "Usage doubled."}]}
    doc = load_document(write(tmp_path / "call.json", json.dumps(data)))
    assert doc.kind == "transcript" and doc.occurred_at == datetime(2024, 2, 20, 10, tzinfo=UTC)
    assert all(s.occurred_at == doc.occurred_at for s in doc.segments)


def test_notes_attendees_line_and_heading_date(tmp_path: Path) -> None:
    p = write(tmp_path / "notes.md", "# Globex QBR - 12 March 2024\n\n**Attendees:** Ana Souza (Acme CSM), "
                                     "Lily Ng <lily@globex.com>; Raj Patel\n\n## Notes\n\nRenewal looks likely.\n")
    doc = load_document(p)
    assert doc.occurred_at == datetime(2024, 3, 12, tzinfo=UTC)
    assert [(x.name, x.address, x.role) for x in doc.participants] == [
        ("Ana Souza", None, "attendee"), ("Lily Ng", "lily@globex.com", "attendee"), ("Raj Patel", None, "attendee")]


def test_ingest_warns_undated_once_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHTRACE_EMBEDDER", "hashing")
    get_settings.cache_clear()
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE, ws)
    write(ws / "documents" / "globex" / "call.vtt", "WEBVTT\n\n" + VTT_CUES)
    write(ws / "documents" / "globex" / "2024-04-11-call.vtt", "WEBVTT\n\n" + VTT_CUES.replace("joining", "coming"))
    res = CliRunner().invoke(app, ["ingest", "--workspace", str(ws), "--no-vectors", "--format", "json"])
    assert res.exit_code == 0, res.output
    warnings = json.loads(res.stdout)["warnings"]
    undated = [w for w in warnings if ": undated:" in w]
    assert len(undated) == 1 and "call.vtt" in undated[0] and "2024-04-11" not in undated[0]
    again = CliRunner().invoke(app, ["ingest", "--workspace", str(ws), "--no-vectors"])
    lines = [ln for ln in again.stderr.splitlines() if ln.startswith("warning:") and ": undated:" in ln]
    assert again.exit_code == 0 and len(lines) == 1  # the re-run says it again, once


# ------------------------------------------------------------------------------------------- JSON as stored
CHAT = {"channel": "globex", "messages": [
    {"author": {"name": "Lily Ng", "email": "lily@globex.com"}, "ts": "2024-03-04T10:00:00Z",
     "text": "Hi Ana,\n\nWe\u2019ve decided not to renew \"Pro\" when the contract ends. The dashboard is down again."},
    {"author": "Ana Souza <ana@acme.io>", "ts": "2024-03-04T11:00:00Z", "text": "Sorry to hear that, I will call you today."},
]}


@pytest.mark.parametrize("ascii_only", [True, False])
def test_chat_json_citations_index_the_raw_file(tmp_path: Path, ascii_only: bool) -> None:
    p = write(tmp_path / "chat.json", json.dumps(CHAT, ensure_ascii=ascii_only, indent=1))
    file_text = raw(p)
    doc = load_document(p)
    assert doc.text == file_text
    signals = get_extractor("rules").extract(doc)
    assert signals
    for s in signals:
        for c in s.evidence:
            assert file_text[c.start : c.end] == c.quote
    # the segmenter reads escapes as what they encode; offsets stay on the raw characters
    norms = [s.norm for s in sentences(doc)]
    assert any("we've decided not to renew \"pro\"" in n for n in norms)
    assert not any("\\n" in n or "\\u" in n for n in norms)


def test_big_ticket_list_threads_are_file_slices_with_their_offset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import extractors.parsers.chat as chat

    tickets = [{"subject": f"Ticket {i}", "requester": "lily@globex.com", "created_at": f"2024-03-0{i + 1}T09:00:00Z",
                "comments": [{"author": "lily@globex.com", "body": f"We were double charged again, case {i}."}]}
               for i in range(3)]
    p = write(tmp_path / "tickets.json", json.dumps({"tickets": tickets}, indent=2))
    file_text = raw(p)
    small = load_documents(p)
    assert all(d.text == file_text for d in small) and len({d.id for d in small}) == 3
    monkeypatch.setattr(chat, "SHARED_TEXT_MAX_CHARS", 10)
    docs = load_documents(p)
    assert len(docs) == 3
    for d in docs:
        off = d.metadata["file_offset"]
        assert file_text[off : off + len(d.text)] == d.text
        msgs = [s for s in d.segments if s.role == "message"]
        assert [d.text[s.start : s.end] for s in msgs] == [f"We were double charged again, case {d.metadata['index']}."]


# ------------------------------------------------------------------------------------------- MIME
def test_base64_and_attachment_parts_are_never_text_or_embedded() -> None:
    single = ("From: a@globex.com\nTo: b@acme.io\nSubject: scan\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n"
              "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nV2UgYXJlIGNhbmNlbGxpbmcu\n")
    doc = parse_text(single)
    assert doc.segments == [] and chunk_document(doc) == []
    multi = ("From: a@globex.com\nTo: b@acme.io\nSubject: report\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n"
             'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XX"\n\n--XX\n'
             "Content-Type: text/plain\n\nSee the attached export.\n--XX\nContent-Type: application/pdf\n"
             "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=a.pdf\n\n"
             + "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\n" * 20 + "--XX--\n")
    doc = parse_text(multi)
    chunks = chunk_document(doc)
    assert [c.text for c in chunks] == ["See the attached export."]


def test_encoded_header_words_decoded_by_the_standard_library() -> None:
    doc = parse_text("From: =?utf-8?q?M=C3=BCller=2C_Hans?= <h@globex.com>\nTo: b@acme.io\n"
                     "Subject: =?iso-8859-1?q?Caf=E9?= menu\n\nHello.\n")
    assert (doc.participants[0].name, doc.participants[0].address) == ("Hans Müller", "h@globex.com")
    assert doc.title == "Café menu"


# ------------------------------------------------------------------------------------------- one segmenter
def test_chunker_cuts_where_the_segmenter_starts_sentences() -> None:
    text = "Mr. Smith called. The renewal is at risk! Is the invoice paid? Thanks, Ann"
    spans = sentence_spans(text)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert [text[a:b].strip() for a, b in spans] == [
        "Mr. Smith called.", "The renewal is at risk!", "Is the invoice paid?", "Thanks, Ann"]
    chunks = chunk_text(text, 8, lambda s: len(s.split()))
    assert {c.start for c in chunks} <= {a for a, _ in spans}


def test_why_json_citations_verify_on_the_stored_ticket_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHTRACE_EMBEDDER", "hashing")
    monkeypatch.setenv("HEALTHTRACE_VENDOR_DOMAINS", "acme.io")
    get_settings.cache_clear()
    ws = tmp_path / "ws"
    (ws / "documents" / "globex").mkdir(parents=True)
    (ws / "accounts.csv").write_text("account_id,name,start_date,end_date,segment\nglobex,Globex,2023-06-01,2024-12-31,smb\n")
    (ws / "usage.csv").write_text("account_id,date,metric,value\nglobex,2024-03-01,active_users,50\n"
                                  "globex,2024-04-01,active_users,40\n")
    tickets = {"tickets": [
        {"subject": "Cancel our plan", "requester": {"name": "Lily Ng", "email": "lily@globex.com"},
         "created_at": "2024-03-20T09:00:00Z",
         "description": "We\u2019ve decided not to renew when the contract ends.\n\nThe dashboard is down again.",
         "comments": [{"author": "Ana Souza <ana@acme.io>", "created_at": "2024-03-20T10:00:00Z",
                       "body": "Sorry to hear that, I will call you today."}]},
        {"subject": "Export", "requester": "lily@globex.com", "created_at": "2024-03-25T09:00:00Z",
         "comments": [{"author": "lily@globex.com", "body": "The export is broken again, this is urgent."}]}]}
    path = write(ws / "documents" / "globex" / "tickets.json", json.dumps(tickets, indent=2))
    file_text = raw(path)
    run = CliRunner()
    for args in (["ingest", "--workspace", str(ws), "--no-vectors"],
                 ["score", "--as-of", "2024-03-01", "--as-of", "2024-04-01", "--save"]):
        res = run.invoke(app, args)
        assert res.exit_code == 0, res.output
    res = run.invoke(app, ["why", "globex", "--from", "2024-03-01", "--to", "2024-04-01", "--format", "json"])
    assert res.exit_code == 0, res.output
    found: list[dict] = []

    def walk(o: object) -> None:
        if isinstance(o, dict):
            if "quote" in o and "start" in o and "end" in o:
                found.append(o)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(json.loads(res.stdout))
    assert found
    for c in found:
        assert file_text[c["start"] : c["end"]] == c["quote"]


def test_chunks_of_a_region_tile_only_that_region() -> None:
    text = '{"a": "Hello there. We are leaving.", "b": "Other thread. Not this one."}'
    a, b = text.index("Hello"), text.index('", "b"')
    chunks = chunk_text(text, 4, lambda s: len(s.split()), start=a, end=b)
    assert chunks[0].start == a and chunks[-1].end == b
    assert "".join(text[c.start : c.end] for c in chunks) == text[a:b]
