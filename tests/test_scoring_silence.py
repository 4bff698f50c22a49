"""Silence is relative to the scoring date: metadata signals (unresponsive) are derived as of each date."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from memory.workspace import load_workspace
from memory.scoring_inputs import inputs_from_workspace
from scoring.batch import score_inputs
from scoring.model import default_model


def _email(sender: str, to: str, day: str, subject: str, body: str) -> str:
    return f"From: {sender}\nTo: {to}\nDate: {day}\nSubject: {subject}\n\n{body}\n"


def _workspace(root: Path) -> Path:
    (root / "documents" / "acme").mkdir(parents=True)
    (root / "accounts.csv").write_text("account_id,name,start_date,end_date,segment\nacme,Acme,2025-01-01,2027-01-31,\n")
    (root / "usage.csv").write_text("account_id,date,metric,value\nacme,2026-03-01,active_users,40\n")
    mails = [
        ("dana@acme.example", "sam@vendor.example", "Sun, 1 Mar 2026 09:00:00 +0000", "Rollout", "Can we plan the rollout?"),
        ("sam@vendor.example", "dana@acme.example", "Mon, 2 Mar 2026 09:00:00 +0000", "Re: Rollout", "Sure, here is a plan."),
        ("sam@vendor.example", "dana@acme.example", "Tue, 10 Mar 2026 09:00:00 +0000", "Re: Rollout", "Any thoughts on the plan?"),
        ("sam@vendor.example", "dana@acme.example", "Fri, 20 Mar 2026 09:00:00 +0000", "Re: Rollout", "Following up once more."),
    ]
    for i, m in enumerate(mails):
        (root / "documents" / "acme" / f"{i}.eml").write_text(_email(*m))
    return root


def test_unresponsive_appears_only_once_the_customer_has_been_silent_long_enough(tmp_path: Path) -> None:
    ws = load_workspace(_workspace(tmp_path / "ws"))
    inputs = inputs_from_workspace(ws, vendor_domains=("vendor.example",))
    inputs.unresponsive_days = 14
    early, late = date(2026, 3, 12), date(2026, 4, 30)
    by_date = {r.as_of: r.to_health_score() for r in score_inputs(inputs, default_model(), [early, late])}

    def silence(day: date) -> list:
        return [c for c in by_date[day].contributions if c.signal_type == "unresponsive"]

    assert silence(early) == []  # two days after the last follow-up: not silence yet
    (item,) = silence(late)
    assert item.points < 0 and item.extractor == "metadata"
    cite = item.evidence[0]
    text = Path(cite.source_path).read_bytes().decode("utf-8", "replace")
    assert text[cite.start : cite.end] == cite.quote
    assert cite.occurred_at is not None and cite.occurred_at.date() == date(2026, 3, 20)  # the last unanswered mail
    # sum of contributions is the score, with the recomputed signal included
    total = by_date[late]
    assert round(sum(c.points for c in total.contributions), 2) == round(total.score, 2)
