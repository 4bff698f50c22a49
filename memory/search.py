"""Evidence search: the vector store ranks, the ledger confirms.

Every result is re-checked against the ledger (the source of truth): a signal the ledger no longer has (replaced
since the vectors were written) is dropped, and a passage is returned only when ``document.text[start:end]``
still equals the stored passage, so a result is always a verbatim, citable quote.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from extractors.errors import NotFoundError

from .ledger import DEFAULT_TENANT, Ledger
from .vectors import VectorMemory


def search_evidence(
    ledger: Ledger,
    vectors: VectorMemory,
    account_id: str,
    query: str,
    *,
    since: date | None = None,
    until: date | None = None,
    type: str | None = None,
    k: int = 10,
    tenant: str = DEFAULT_TENANT,
) -> list[dict[str, Any]]:
    ledger.get_account(account_id, tenant)  # NotFoundError for an unknown account
    hits = vectors.search(account_id, query, tenant=tenant, k=k, since=since, until=until, type=type)
    sig_ids = [h.id for h in hits if h.kind == "signal"]
    signals = {s.id: s for s, _ in ledger.signals_by_ids(sig_ids)}
    texts: dict[str, str | None] = {}
    out: list[dict[str, Any]] = []
    for h in hits:
        m = h.metadata
        row: dict[str, Any] = {
            "kind": h.kind,
            "id": h.id,
            "score": h.score,
            "type": m.get("type"),
            "category": m.get("category"),
            "date": m.get("date_iso"),
            "source_id": m.get("source_id"),
            "source_path": m.get("source_path"),
            "start": m.get("start"),
            "end": m.get("end"),
        }
        if h.kind == "signal":
            sig = signals.get(h.id)
            if sig is None:
                continue
            row.update({
                "polarity": sig.polarity,
                "verified": sig.verified,
                "summary": sig.summary,
                "quote": sig.evidence[0].quote if sig.evidence else None,
                "evidence": [c.model_dump(mode="json") for c in sig.evidence],
                "extractor": sig.extractor,
            })
        else:
            sid = row["source_id"]
            if sid not in texts:
                try:
                    texts[sid] = ledger.get_document(sid).text
                except NotFoundError:
                    texts[sid] = None
            text = texts[sid]
            if text is None or text[row["start"] : row["end"]] != h.text:
                continue
            row["quote"] = h.text
        out.append(row)
    return out
