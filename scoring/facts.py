"""Facts derived from the account and its documents, as of a date.

Pure: the caller passes the account, the parsed documents and the vendor's own email domains; nothing dated
after as-of is read (documents without a date cannot be placed in time and are left out, and counted).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, timedelta
from typing import NamedTuple

from extractors.metadata import name_addresses, person_key
from extractors.models import Account, Citation, SourceDocument

CONTACT_WINDOW_DAYS = 90
SINGLE_THREADED_BELOW = 2


class Fact(NamedTuple):
    value: float
    on: date | None  # the date the fact was true; facts dated after as-of never count
    detail: str
    evidence: tuple[Citation, ...] = ()


def account_facts(account: Account, as_of: date) -> dict[str, Fact]:
    """Facts from the account record alone (contract dates)."""
    out: dict[str, Fact] = {}
    if account.end_date is not None:
        days = (account.end_date - as_of).days
        out["days_to_renewal"] = Fact(float(days), as_of, f"contract ends {account.end_date.isoformat()}")
    if account.start_date is not None and account.start_date <= as_of:
        out["tenure_days"] = Fact(float((as_of - account.start_date).days), as_of,
                                  f"customer since {account.start_date.isoformat()}")
    return out


def _is_vendor(domain: str, vendor_domains: Collection[str]) -> bool:
    """Subdomains count too: mail.vendor.com is the vendor's own people, not a customer contact."""
    return any(domain == v or domain.endswith("." + v) for v in vendor_domains)


def _identities(doc: SourceDocument, vendor_domains: Collection[str], names: dict[str, str]) -> set[str]:
    """The customer people of a document, one identity each: a display name or handle seen with an address
    anywhere (``names``) is that address, so a person counts once and our own people (a CSM speaking on a
    call, named on an ``Attendees:`` line) are never customer contacts."""
    ids: set[str] = set()

    def add(name: str | None, address: str | None) -> None:
        addr = (address or "").strip().lower() or names.get(person_key(name), "")
        if addr:
            if not _is_vendor(addr.rsplit("@", 1)[-1], vendor_domains):
                ids.add(addr)
        elif person_key(name):
            ids.add(person_key(name))

    for p in doc.participants:
        add(p.name, p.address)
    if not ids:
        for seg in doc.segments:
            if seg.address or seg.speaker:
                add(seg.speaker, seg.address)
    return ids


def document_facts(
    documents: Iterable[SourceDocument], as_of: date, *, vendor_domains: Collection[str] = ()
) -> tuple[dict[str, Fact], int]:
    """(facts, number of undated documents left out). No documents -> no facts (not zero contacts)."""
    vendor = tuple(v.lower().lstrip("@") for v in vendor_domains)
    documents = list(documents)
    names = name_addresses(documents)
    since = as_of - timedelta(days=CONTACT_WINDOW_DAYS)
    contacts: set[str] = set()
    recent = 0
    last: date | None = None
    last_doc: SourceDocument | None = None
    undated = 0
    seen_any = False
    for doc in documents:
        if doc.occurred_at is None:
            undated += 1
            continue
        day = doc.occurred_at.date()
        if day > as_of:
            continue
        seen_any = True
        if last is None or day > last or (day == last and last_doc is not None and doc.id < last_doc.id):
            last, last_doc = day, doc
        if day > since:
            recent += 1
            contacts |= _identities(doc, vendor, names)
    if not seen_any:
        return {}, undated
    label = last_doc.path or last_doc.title or last_doc.id if last_doc else ""
    facts = {
        "distinct_contacts_90d": Fact(
            float(len(contacts)), as_of,
            f"{len(contacts)} distinct customer contact(s) in {CONTACT_WINDOW_DAYS} days"
            + (" (single-threaded)" if len(contacts) < SINGLE_THREADED_BELOW else ""),
        ),
        "documents_90d": Fact(float(recent), as_of, f"{recent} conversation(s) in {CONTACT_WINDOW_DAYS} days"),
    }
    if last is not None:
        facts["days_since_last_conversation"] = Fact(
            float((as_of - last).days), last, f"last conversation {last.isoformat()} ({label})"
        )
    return facts, undated
