"""Signals from timestamps and participants, not words: who wrote to whom, when, and who stopped.

Pure: no clock and no I/O. ``as_of`` is passed in; without it the latest date found in the documents is
used, so the same documents always give the same signals. Every signal's ``occurred_at`` is a date read
from a document, and every citation is a verbatim span (a Subject header value or the first sentence of
the message) with real offsets.

Which side is which. A participant's side comes from the domain of their address (subdomains included):

* ``vendor_domains`` given (configured: ``HEALTHTRACE_VENDOR_DOMAINS=acme.io,acme.com`` or the workspace's
  ``vendor_domains.txt``): those domains are the vendor, every other domain is the customer.
* Else inferred ONCE across the whole workspace by :func:`infer_vendor_domains`: a domain whose people
  take part in many accounts' conversations is ours (customers only appear in their own account); the
  caller passes the result with ``vendor_inferred=True``, which lowers the confidence.
* Never guessed per account: inside one account the customer may well write most of the mail, and then
  the customer's own replies would read as "the customer has not replied". Without known sides no
  vendor-relative signal is emitted. Free-mail domains (gmail.com ...) are never taken as the vendor.

One person is one identity: a display name seen with an address anywhere in the account (an email From,
an ``Attendees:`` line) resolves a speaker or chat author of that name (``Lily Ng``, ``lily.ng``) to the
address, so our CSM speaking on a call is the vendor, not a customer contact.

Messages considered are the top-level ones: an email document (its From and Date), each message of a
chat/ticket/mbox rendering, and one appearance per speaker per transcript. Forwarded and quoted messages
embedded in a chain are not counted again (they duplicate messages that usually exist on their own).

Signals:

* ``unresponsive``: the last vendor-to-customer message has had no later customer message for at least
  ``unresponsive_days`` at ``as_of``. Cites that message. Confidence grows with the number of vendor
  messages left unanswered since the customer last wrote (one unanswered mail is weaker evidence than
  three follow-ups) and is lower when sides were inferred.
* ``sponsor_disengaged``: a customer person who had written at least ``min_messages`` messages (and at
  least a fifth of the customer side's) has neither written nor been addressed (To/Cc) in the last
  ``2 * unresponsive_days`` before ``as_of``, while other customer people wrote in that window (when
  everyone stopped, that is ``unresponsive``, not this).
  Cites their last message. Confidence is modest: the metadata cannot tell a sponsor from a busy user.
* ``stakeholder_change``: a customer person writes for the first time after the account already had at
  least ``unresponsive_days`` of customer history, and signs with a senior title (VP, Director, Chief...,
  Head of, CxO, President, Owner). Cites the signature line with the title.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from .base import register_extractor
from .grounding import citation_for_span
from .models import Citation, Signal, SourceDocument
from .segmenter import sentences_in

NAME = "metadata"
VERSION = "1.0.0"

FREEMAIL = frozenset(
    "gmail.com googlemail.com yahoo.com outlook.com hotmail.com live.com msn.com aol.com icloud.com me.com "
    "proton.me protonmail.com gmx.de gmx.net web.de mail.com yandex.ru qq.com 163.com".split()
)
_SUBJECT = re.compile(r"^Subject:[ \t]*(\S[^\r\n]*?)[ \t]*\r?$", re.M | re.I)
_TITLE = re.compile(
    r"\b(?:(?:Senior |Executive |Group )?Vice[- ]President|SVP|EVP|VP|Director|Head of [A-Z][\w&]*|"
    r"Chief [A-Z][a-z]+ Officer|C[EFTOIR]O|President|Owner|Founder|General Manager|Managing Director)\b"
)
_MAX_MESSAGES = 100_000


@dataclass(slots=True)
class _Event:
    """One message written by one participant at one time."""

    at: datetime
    key: str  # address, else lower-cased name
    name: str | None
    domain: str | None
    recipients: frozenset[str]
    doc: SourceDocument
    seg_start: int | None  # the message's first content segment, if known
    seg_end: int | None
    order: int = 0
    subject_span: tuple[int, int] | None = None


@dataclass(slots=True)
class _Sides:
    vendor: frozenset[str]
    inferred: bool
    known: bool = True
    note: str = ""
    counts: dict[str, int] = field(default_factory=dict)


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _as_datetime(as_of: datetime | date | None) -> datetime | None:
    if as_of is None:
        return None
    if isinstance(as_of, datetime):
        return _aware(as_of)
    return datetime.combine(as_of, time(23, 59, 59), tzinfo=UTC)  # a date means "by the end of that day"


def _domain(address: str | None) -> str | None:
    if address and "@" in address:
        return address.rsplit("@", 1)[1].lower().strip(">") or None
    return None


def _subject_span(doc: SourceDocument) -> tuple[int, int] | None:
    """The Subject header value, only inside the header block (before the first content segment)."""
    limit = doc.segments[0].start if doc.segments else min(len(doc.text), 20_000)
    m = _SUBJECT.search(doc.text, 0, limit)
    if not m:
        return None
    return m.start(1), m.end(1)


def _first_sentence(text: str, start: int, end: int, cap: int = 240) -> tuple[int, int] | None:
    """The message's first sentence (by the one segmenter), at most ``cap`` characters."""
    found = sentences_in(text, start, min(end, start + cap))
    return (found[0].start, found[0].end) if found else None


def person_key(name: str | None) -> str:
    """A display name or handle compared loosely: ``Lily Ng``, ``lily.ng``, ``LILY_NG`` are one person."""
    return " ".join(re.split(r"[\s._]+", (name or "").strip().lower())).strip()


def name_addresses(docs: Iterable[SourceDocument]) -> dict[str, str]:
    """Display name (and an address's local part) -> address, from every participant and segment that shows
    both; the first address seen for a name wins, so the mapping does not depend on later documents."""
    out: dict[str, str] = {}
    for d in docs:
        pairs = [(p.name, p.address) for p in d.participants] + [(s.speaker, s.address) for s in d.segments]
        for name, addr in pairs:
            if addr and "@" in addr:
                addr = addr.strip().lower()
                if name and person_key(name) and person_key(name) != addr:
                    out.setdefault(person_key(name), addr)
                out.setdefault(person_key(addr.split("@", 1)[0]), addr)
    return out


def is_vendor_domain(domain: str | None, vendor: Collection[str]) -> bool:
    """Subdomains count too: mail.acme.io is the vendor when acme.io is."""
    return bool(domain) and any(domain == v or domain.endswith("." + v) for v in vendor)  # type: ignore[union-attr]


def infer_vendor_domains(docs_by_account: Mapping[str, Iterable[SourceDocument]], *, min_accounts: int = 2,
                         share: float = 0.5) -> tuple[str, ...]:
    """The vendor's own domains, inferred once across the whole workspace: a domain (never free mail) that
    takes part (From/To/Cc, chat authors, attendees) in at least ``min_accounts`` accounts and in at least
    ``share`` of the accounts with any addressed document. Customers appear only in their own account,
    so however much a customer writes in its account, its domain is never taken for ours. Fewer than two
    accounts with addresses: nothing can be inferred (an empty tuple; configure the domains instead)."""
    addresses: dict[str, set[str]] = {}
    for aid, docs in docs_by_account.items():
        found = addresses.setdefault(aid, set())
        for d in docs:
            found.update(p.address for p in d.participants if p.address)
            found.update(s.address for s in d.segments if s.address)
    return vendor_domains_from_addresses(addresses, min_accounts=min_accounts, share=share)


def vendor_domains_from_addresses(addresses_by_account: Mapping[str, Iterable[str]], *, min_accounts: int = 2,
                                  share: float = 0.5) -> tuple[str, ...]:
    """:func:`infer_vendor_domains` on each account's set of addresses (what a store can hand over cheaply)."""
    seen: dict[str, set[str]] = defaultdict(set)
    with_mail: set[str] = set()
    for aid, addrs in addresses_by_account.items():
        for addr in addrs:
            dom = _domain(addr)
            if dom and dom not in FREEMAIL:
                seen[dom].add(aid)
                with_mail.add(aid)
    if len(with_mail) < 2:
        return ()
    need = max(min_accounts, math.ceil(share * len(with_mail)))
    return tuple(sorted(dom for dom, accounts in seen.items() if len(accounts) >= need))


def _events(docs: Sequence[SourceDocument]) -> list[_Event]:
    names_to_address = name_addresses(docs)

    def key_of(name: str | None, address: str | None) -> tuple[str, str | None] | None:
        addr = (address or "").strip().lower() or (names_to_address.get(person_key(name)) if name else None)
        if addr:
            return addr, _domain(addr)
        if name and person_key(name):
            return person_key(name), None
        return None

    out: list[_Event] = []
    for d in docs:
        top = [s for s in d.segments if s.role in ("body", "message", "utterance")]
        if d.kind == "email" and d.metadata.get("format") != "mbox":
            sender = next((p for p in d.participants if p.role == "from"), None)
            if sender is None or d.occurred_at is None:
                continue
            k = key_of(sender.name, sender.address)
            if k is None:
                continue
            rcpt = frozenset(p.address for p in d.participants if p.role in ("to", "cc") and p.address)
            first = top[0] if top else None
            out.append(_Event(_aware(d.occurred_at), k[0], sender.name, k[1], rcpt, d,
                              first.start if first else None, first.end if first else None,
                              subject_span=_subject_span(d)))
            continue
        seen: set[tuple[str, object]] = set()
        per_doc_once = d.kind == "transcript"
        for s in top:
            at = s.occurred_at or d.occurred_at
            if at is None:
                continue
            k = key_of(s.speaker, s.address)
            if k is None:
                continue
            ident = (k[0], None if per_doc_once else (s.start if d.kind != "email" else at))
            if ident in seen:
                continue
            seen.add(ident)
            out.append(_Event(_aware(at), k[0], s.speaker, k[1], frozenset(), d, s.start, s.end))
        if len(out) > _MAX_MESSAGES:
            break
    out.sort(key=lambda e: (e.at, e.doc.id, e.seg_start or 0))
    for i, e in enumerate(out):
        e.order = i
    return out


def _sides(vendor_domains: Sequence[str], inferred: bool) -> _Sides:
    if vendor_domains:
        return _Sides(frozenset(d.lower().lstrip("@") for d in vendor_domains), inferred=inferred)
    return _Sides(frozenset(), inferred=True, known=False,
                  note="vendor domains unknown: set HEALTHTRACE_VENDOR_DOMAINS or vendor_domains.txt")


def _cite(e: _Event) -> Citation | None:
    """The message's Subject value, else the first sentence of its text."""
    doc = e.doc
    span = e.subject_span
    if span is None and e.seg_start is not None and e.seg_end is not None:
        span = _first_sentence(doc.text, e.seg_start, e.seg_end)
    if span is None:
        return None
    return citation_for_span(doc, span[0], span[1])


class MetadataExtractor:
    """Works across an account's documents (:meth:`extract_account`); :meth:`extract` on one document
    applies the same rules to the messages inside it (an mbox, a chat export, a ticket)."""

    name = NAME
    version = VERSION

    def __init__(
        self,
        unresponsive_days: int = 14,
        vendor_domains: Sequence[str] | str = (),
        min_messages: int = 3,
        vendor_inferred: bool = False,
    ) -> None:
        if unresponsive_days < 1:
            raise ValueError("unresponsive_days must be at least 1")
        self.unresponsive_days = int(unresponsive_days)
        if isinstance(vendor_domains, str):  # "acme.io, acme.com" from an environment variable
            vendor_domains = vendor_domains.split(",")
        self.vendor_domains = tuple(d.strip().lower().lstrip("@") for d in vendor_domains if d and d.strip())
        self.min_messages = max(1, int(min_messages))
        self.vendor_inferred = bool(vendor_inferred)  # the domains came from infer_vendor_domains

    # ------------------------------------------------------------------ public
    def extract(self, doc: SourceDocument) -> list[Signal]:
        return self.extract_account([doc], as_of=None)

    def extract_account(self, docs: Sequence[SourceDocument], as_of: datetime | date | None = None) -> list[Signal]:
        cutoff = _as_datetime(as_of)
        events = [e for e in _events(docs) if cutoff is None or e.at <= cutoff]
        if not events:
            return []
        now = cutoff or events[-1].at  # the latest document date, never the clock
        sides = _sides(self.vendor_domains, self.vendor_inferred)
        account_id = next((d.account_id for d in docs if d.account_id), None)
        out: list[Signal] = []
        if sides.known:
            out.extend(self._unresponsive(events, sides, now, account_id))
            out.extend(self._sponsor_disengaged(events, sides, now, account_id))
            out.extend(self._stakeholder_change(events, sides, account_id))
        return out

    # ------------------------------------------------------------------ rules
    @staticmethod
    def _is_vendor(e: _Event, sides: _Sides) -> bool:
        return is_vendor_domain(e.domain, sides.vendor)

    @staticmethod
    def _is_customer(e: _Event, sides: _Sides) -> bool:
        return e.domain is not None and not is_vendor_domain(e.domain, sides.vendor)

    def _to_customer(self, e: _Event, sides: _Sides) -> bool:
        if not self._is_vendor(e, sides):
            return False
        if not e.recipients:  # chat/ticket messages are addressed to the whole conversation
            return True
        return any(not is_vendor_domain(_domain(r), sides.vendor) for r in e.recipients)

    def _signal(self, type_: str, e: _Event, cite: Citation, account_id: str | None, *, confidence: float,
                severity: float, summary: str) -> Signal:
        return Signal(
            account_id=account_id,
            type=type_,
            severity=round(min(1.0, max(0.0, severity)), 3),
            confidence=round(min(1.0, max(0.0, confidence)), 3),
            occurred_at=e.at,
            summary=summary,
            evidence=[cite],
            extractor=NAME,
            extractor_version=VERSION,
            source_id=e.doc.id,
        )

    def _unresponsive(self, events: list[_Event], sides: _Sides, now: datetime, account_id: str | None) -> list[Signal]:
        last_customer = max((e.at for e in events if self._is_customer(e, sides)), default=None)
        unanswered = [e for e in events if self._to_customer(e, sides) and (last_customer is None or e.at > last_customer)]
        if not unanswered:
            return []
        last = unanswered[-1]
        days = (now - last.at).total_seconds() / 86400
        n = self.unresponsive_days
        if days < n:
            return []
        cite = _cite(last)
        if cite is None:
            return []
        follow_ups = len(unanswered)
        confidence = {1: 0.6, 2: 0.75}.get(follow_ups, 0.85) * (0.8 if sides.inferred else 1.0)
        if last_customer is None:  # the customer never wrote at all: silence is weaker evidence of a change
            confidence *= 0.8
        severity = 0.4 + 0.6 * min(1.0, (days - n) / (3 * n))
        since = f"last wrote on {last_customer.date().isoformat()}" if last_customer else "never wrote in these documents"
        summary = (
            f"No customer reply for {int(days)} days (threshold {n}): {follow_ups} vendor message(s) "
            f"unanswered, the customer {since}; last from {last.name or last.key} on {last.at.date().isoformat()}"
        )
        return [self._signal("unresponsive", last, cite, account_id, confidence=confidence, severity=severity,
                             summary=summary)]

    def _sponsor_disengaged(self, events: list[_Event], sides: _Sides, now: datetime, account_id: str | None) -> list[Signal]:
        customer = [e for e in events if self._is_customer(e, sides)]
        if not customer:
            return []
        sent = Counter(e.key for e in customer)
        top_sender = sent.most_common(1)[0][0]
        window = timedelta(days=2 * self.unresponsive_days)
        recent = [e for e in events if e.at > now - window]
        out: list[Signal] = []
        for person, count in sorted(sent.items()):
            if count < self.min_messages or count * 5 < len(customer):
                continue
            last = [e for e in customer if e.key == person][-1]
            if now - last.at < window:
                continue
            if any(e.key == person or person in e.recipients for e in recent):
                continue
            others = [e for e in recent if self._is_customer(e, sides)]
            if not others:
                continue  # everyone went quiet: that is unresponsive, not one person disengaging
            cite = _cite(last)
            if cite is None:
                continue
            confidence = 0.45 + 0.05 * min(count - self.min_messages, 3) + (0.1 if person == top_sender else 0.0)
            confidence *= 0.9 if sides.inferred else 1.0
            gone = (now - last.at).days
            summary = (
                f"{last.name or person} wrote {count} of the customer's {len(customer)} messages, then nothing for "
                f"{gone} days while {len({e.key for e in others})} other customer participant(s) kept writing"
            )
            out.append(self._signal("sponsor_disengaged", last, cite, account_id, confidence=min(confidence, 0.7),
                                    severity=0.5 + 0.5 * min(1.0, gone / (4 * self.unresponsive_days)),
                                    summary=summary))
        return out

    def _stakeholder_change(self, events: list[_Event], sides: _Sides, account_id: str | None) -> list[Signal]:
        customer = [e for e in events if self._is_customer(e, sides)]
        if not customer:
            return []
        history_start = customer[0].at
        need = timedelta(days=self.unresponsive_days)
        seen: set[str] = set()
        out: list[Signal] = []
        for e in customer:
            if e.key in seen:
                continue
            seen.add(e.key)
            if e.at - history_start < need or e.seg_start is None or e.seg_end is None:
                continue
            span = self._title_line(e.doc.text, e.seg_start, e.seg_end)
            if span is None:
                continue
            cite = citation_for_span(e.doc, span[0], span[1])
            out.append(self._signal(
                "stakeholder_change", e, cite, account_id, confidence=0.55 * (0.9 if sides.inferred else 1.0),
                severity=0.5,
                summary=f"New customer participant {e.name or e.key} ({cite.quote.strip()}) first wrote on "
                        f"{e.at.date().isoformat()}, {(e.at - history_start).days} days into the account's history",
            ))
        return out

    @staticmethod
    def _title_line(text: str, start: int, end: int) -> tuple[int, int] | None:
        """A senior title in the signature: the last 6 short lines of the message."""
        lines: list[tuple[int, int]] = []
        pos = start
        for raw in text[start:end].splitlines(True):
            body = raw.rstrip("\r\n")
            lines.append((pos, pos + len(body)))
            pos += len(raw)
        for a, b in reversed(lines[-6:]):
            line = text[a:b]
            if len(line.strip()) > 80 or not line.strip():
                continue
            if _TITLE.search(line):
                while a < b and text[a].isspace():
                    a += 1
                while b > a and text[b - 1].isspace():
                    b -= 1
                return (a, b) if b > a else None
        return None


register_extractor(NAME, lambda **options: MetadataExtractor(**options))  # type: ignore[arg-type]
