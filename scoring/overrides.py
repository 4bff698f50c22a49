"""CSM overrides shown beside the computed score (pure: rows come from memory.feedback).

An override is a CSM's own tier/score with a reason code; it never changes the model's score, it is shown
next to it in ``why``, ``recap``, the API, the export and the dashboard, with the same field names everywhere
(``reason_code``, ``tier``, ``score``, ``note``, ``author``, ``as_of``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

FIELDS = ("id", "as_of", "tier", "score", "reason_code", "note", "author", "model_score", "model_tier")


def latest_override(rows: Iterable[Mapping[str, Any]], on_or_before: date | None = None) -> dict[str, Any] | None:
    """The newest override (by as_of, then id) dated on or before a day; None when there is none."""
    best = None
    for r in rows:
        d = r.get("as_of")
        if on_or_before is not None and d is not None and d > on_or_before:
            continue
        key = (d or date.min, r.get("id") or 0)
        if best is None or key > best[0]:
            best = (key, r)
    return view(best[1]) if best is not None else None


def latest_by_account(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    per: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        per.setdefault(r["account_id"], []).append(r)
    out = {}
    for aid, rs in per.items():
        v = latest_override(rs)
        if v is not None:
            out[aid] = v
    return out


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored override row in the shared field names (the store's ``reason`` is the reason code)."""
    out = {k: row.get(k) for k in FIELDS if k != "reason_code"}
    out["reason_code"] = row.get("reason_code", row.get("reason"))
    out["account_id"] = row.get("account_id")
    return out


def override_sentence(ov: Mapping[str, Any], computed: float | None = None) -> str:
    """'CSM override (20 Jun 2026, Maya Chen): At Risk, score 40, reason champion_risk: "...". The model
    says 56.6 (Attention).'"""
    when = ov["as_of"].isoformat() if isinstance(ov.get("as_of"), date) else str(ov.get("as_of") or "")
    who = f", {ov['author']}" if ov.get("author") else ""
    score = f", score {ov['score']:g}" if ov.get("score") is not None else ""
    reason = str(ov.get("reason_code") or "").replace("_", " ")
    note = f': "{" ".join(str(ov["note"]).split())[:200]}"' if ov.get("note") else ""
    text = f"CSM override ({when}{who}): {ov.get('tier')}{score}, because of {reason}{note}."
    if computed is not None:
        from extractors.models import tier_for

        text += f" The computed score is {computed:.1f} ({tier_for(computed)})."
    return text
