"""A generated workspace a new customer might bring: its own metric names and units, every document format.

Six B2B accounts of a vendor ("brightloop.io", CSM Maya Chen) with stories whose direction is known:
northwind (the champion leaves, usage falls), orbit (expansion), quarry (billing dispute), summit (the customer
goes silent), tessellate (AI output quality drops), upland (recovers from an escalation). Usage uses export names
the bundled model does not know (weekly_active_users, licenses, ai_suggestions_accepted_pct in percent,
regenerated_pct, invoice_days_overdue, tickets_open, p1_tickets, nps_responses 0-10, csat_pct, arr_change as a
fraction) plus one metric of unknown meaning (internal_widget_count). Written by code, deterministic.
"""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

START = date(2026, 1, 5)  # a Monday
WEEKS = 26
D1 = date(2026, 3, 30)  # week 12
D2 = date(2026, 6, 29)  # week 25
VENDOR = "brightloop.io"
CSM = "Maya Chen <maya.chen@brightloop.io>"

# account -> expected direction of the score from D1 to D2
STORIES = {
    "northwind": "down",  # champion leaves
    "orbit": "up",  # expansion
    "quarry": "down",  # billing dispute
    "summit": "down",  # silence
    "tessellate": "down",  # AI quality drop
    "upland": "up",  # recovery
}
EXPORT_METRICS = ("weekly_active_users", "licenses", "ai_suggestions_accepted_pct", "regenerated_pct",
                  "invoice_days_overdue", "tickets_open", "p1_tickets", "nps_responses", "csat_pct", "arr_change",
                  "internal_widget_count")


def _lin(w: int, w0: int, w1: int, a: float, b: float) -> float:
    """a before week w0, b after w1, linear in between."""
    if w <= w0:
        return a
    if w >= w1:
        return b
    return a + (b - a) * (w - w0) / (w1 - w0)


def _usage(aid: str, w: int) -> dict[str, float]:
    wob = (w * 7 + len(aid)) % 3 - 1  # small deterministic wobble
    u: dict[str, float] = {"licenses": 100, "tickets_open": 3, "p1_tickets": 0, "invoice_days_overdue": 0,
                           "internal_widget_count": (w * 13 + len(aid) * 7) % 40}
    if aid == "northwind":
        u |= {"weekly_active_users": _lin(w, 15, 24, 80, 38) + wob, "ai_suggestions_accepted_pct": 74 + wob,
              "regenerated_pct": 10, "tickets_open": 3 if w < 15 else 5}
    elif aid == "orbit":
        u |= {"weekly_active_users": 48 + 2 * w + wob, "ai_suggestions_accepted_pct": _lin(w, 0, 25, 70, 84),
              "regenerated_pct": _lin(w, 0, 25, 12, 7), "tickets_open": 2}
    elif aid == "quarry":
        u |= {"weekly_active_users": 66 + wob, "ai_suggestions_accepted_pct": 72, "regenerated_pct": 11,
              "invoice_days_overdue": 0 if w < 16 else 7 * (w - 15), "tickets_open": 2}
    elif aid == "summit":
        u |= {"weekly_active_users": _lin(w, 12, 25, 60, 44) + wob, "ai_suggestions_accepted_pct": 70,
              "regenerated_pct": 12, "tickets_open": 2}
    elif aid == "tessellate":
        u |= {"weekly_active_users": _lin(w, 14, 25, 72, 62) + wob,
              "ai_suggestions_accepted_pct": _lin(w, 14, 22, 83, 41), "regenerated_pct": _lin(w, 14, 22, 8, 36),
              "tickets_open": 2 if w < 16 else 7}
    elif aid == "upland":
        u |= {"weekly_active_users": _lin(w, 12, 22, 42, 70) + wob,
              "ai_suggestions_accepted_pct": _lin(w, 12, 20, 52, 79), "regenerated_pct": _lin(w, 12, 20, 24, 10),
              "p1_tickets": 3 if 4 <= w <= 12 else 0, "tickets_open": 9 if w <= 12 else 3}
    return u


def _nps_answers(aid: str, month: int) -> list[int]:
    good = {"northwind": month < 4, "orbit": True, "quarry": month < 4, "summit": month < 3,
            "tessellate": month < 5, "upland": month > 4}[aid]
    return [10, 9, 8, 9] if good else [6, 4, 7, 3]


def _csat_pct(aid: str, month: int) -> float:
    bad = {"northwind": month > 4, "orbit": False, "quarry": month > 4, "summit": False, "tessellate": month > 4,
           "upland": month < 4}[aid]
    return 58.0 if bad else 91.0


def _eml(frm: str, to: str, when: str, subject: str, body: str, msg_id: str) -> str:
    return (f"From: {frm}\nTo: {to}\nDate: {when}\nSubject: {subject}\nMessage-ID: <{msg_id}>\n\n{body.strip()}\n")


def _documents() -> dict[str, dict[str, str]]:
    nw = "Priya Raman <priya.raman@northwind-freight.example>"
    orb = "Leo Marsh <leo.marsh@orbitpay.example>"
    qu = "Hannah Ford <hannah.ford@quarrybuild.example>"
    su = "Omar Haddad <omar.haddad@summitcare.example>"
    te = "Ines Duarte <ines.duarte@tessellate-law.example>"
    up = "Ken Watanabe <ken.watanabe@upland-energy.example>"
    return {
        "northwind": {
            "2026-01-20-kickoff.md": (
                "# Northwind Freight kickoff\nDate: 2026-01-20\nAttendees: Priya Raman (Northwind), Tom Becker "
                "(Northwind), Maya Chen (Brightloop)\n\n## Goals\n- The goal for this year is to cut the time to "
                "draft a shipping quote in half.\n- Priya owns the rollout across the three depots.\n"),
            "2026-04-20-last-day.eml": _eml(
                nw, CSM, "Mon, 20 Apr 2026 16:10:00 +0000", "Moving on",
                "Hi Maya,\n\nI wanted you to hear it from me first: Friday is my last day at Northwind. I have "
                "accepted a role at another company. Tom Becker will pick up the tools budget for now, but he has "
                "not used Brightloop much.\n\nThank you for all the help this year.\nPriya", "nw-1@northwind"),
            "2026-05-28-checkin.vtt": (
                "WEBVTT\n\n00:00:01.000 --> 00:00:05.000\n<v Maya Chen>Thanks for taking the call, Tom. How is the "
                "rollout going since Priya left?\n\n00:00:05.500 --> 00:00:12.000\n<v Tom Becker>Honestly, nobody "
                "really owns it right now. The depots stopped using it after she left and I'm not sure we'll keep "
                "it.\n"),
        },
        "orbit": {
            "2026-02-10-qbr.txt": (
                "Title: Orbit Pay quarterly review\nDate: 2026-02-10\n\nMaya Chen: How are the finance teams finding "
                "the drafts?\nLeo Marsh: Really well. It saved us hours every week on reconciliations, the team "
                "loves it.\nMaya Chen: Great to hear.\n"),
            "2026-05-15-expansion.eml": _eml(
                orb, CSM, "Fri, 15 May 2026 10:00:00 +0000", "More seats",
                "Hi Maya,\n\nWe would like to add 40 more seats so the treasury team can start using Brightloop "
                "next month. Could you send a quote for the expansion?\n\nBest,\nLeo", "orb-1@orbitpay"),
            "2026-06-10-thread.mbox": (
                "From leo.marsh@orbitpay.example Wed Jun 10 09:00:00 2026\n"
                + _eml(orb, CSM, "Wed, 10 Jun 2026 09:00:00 +0000", "Treasury rollout",
                       "Hi Maya,\n\nThe treasury pilot went great, we are very happy with the results. Let's sign "
                       "the expansion this month.\n\nLeo", "orb-2@orbitpay")
                + "\nFrom maya.chen@brightloop.io Wed Jun 10 11:00:00 2026\n"
                + _eml(CSM, orb, "Wed, 10 Jun 2026 11:00:00 +0000", "Re: Treasury rollout",
                       "Wonderful news, Leo. I will send the order form today.\n\nMaya", "orb-3@brightloop")),
        },
        "quarry": {
            "2026-02-02-sync.srt": (
                "1\n00:00:01,000 --> 00:00:04,000\nMaya Chen: How are the site reports going?\n\n2\n"
                "00:00:04,500 --> 00:00:08,000\nHannah Ford: Fine, the site managers use it every morning.\n"),
            "2026-04-28-invoice.eml": _eml(
                qu, CSM, "Tue, 28 Apr 2026 14:00:00 +0000", "Invoice INV-2291",
                "Hi Maya,\n\nWe are disputing invoice INV-2291: it bills 150 seats but our contract is for 100. "
                "Our finance team has put the payment on hold until a corrected invoice is issued.\n\nHannah",
                "qu-1@quarrybuild"),
            "2026-06-05-finance-chat.json": json.dumps({"channel": "quarry-finance", "messages": [
                {"author": {"name": "Hannah Ford", "email": "hannah.ford@quarrybuild.example"},
                 "sent_at": "2026-06-05T09:00:00Z",
                 "text": "The invoice is still wrong and still unpaid. We can't pay the invoice until billing fixes it."},
                {"author": {"name": "Maya Chen", "email": "maya.chen@brightloop.io"},
                 "sent_at": "2026-06-05T09:30:00Z", "text": "I'm chasing our billing team today."}]}),
        },
        "summit": {
            "2026-01-15-onboarding.md": (
                "# Summit Care onboarding\nDate: 2026-01-15\nAttendees: Omar Haddad (Summit Care), Lena Park "
                "(Summit Care), Maya Chen (Brightloop)\n\n- Agreed goal: every ward drafts its handover notes in "
                "Brightloop by March.\n"),
            "2026-02-12-reply.eml": _eml(
                su, CSM, "Thu, 12 Feb 2026 09:00:00 +0000", "Re: handover notes",
                "Hi Maya,\n\nThanks, the wards are getting on with it. Talk soon.\n\nOmar", "su-1@summitcare"),
            "2026-04-15-followup.eml": _eml(
                CSM, su, "Wed, 15 Apr 2026 09:00:00 +0000", "Checking in",
                "Hi Omar,\n\nCould we find 30 minutes to review the rollout this month?\n\nMaya", "su-2@brightloop"),
            "2026-05-20-followup.eml": _eml(
                CSM, su, "Wed, 20 May 2026 09:00:00 +0000", "Re: Checking in",
                "Hi Omar,\n\nFollowing up on my last note. Is there a good time to talk?\n\nMaya", "su-3@brightloop"),
            "2026-06-22-followup.eml": _eml(
                CSM, su, "Mon, 22 Jun 2026 09:00:00 +0000", "Re: Checking in",
                "Hi Omar,\n\nI haven't heard back. Should I talk to someone else on your team?\n\nMaya",
                "su-4@brightloop"),
        },
        "tessellate": {
            "2026-01-26-note.txt": (
                "Account note, 26 January 2026. The associates at Tessellate use the contract drafts daily and "
                "the partners are pleased with the first month.\n"),
            "2026-05-06-ticket.json": json.dumps({
                "id": 8812, "subject": "Draft quality", "created_at": "2026-05-06T10:00:00Z",
                "requester": {"name": "Ines Duarte", "email": "ines.duarte@tessellate-law.example"},
                "description": ("Since the May update the suggestions are much worse. Half of the drafts are wrong "
                                "and the associates regenerate them again and again."),
                "comments": [{"author": "Maya Chen <maya.chen@brightloop.io>", "created_at": "2026-05-06T12:00:00Z",
                              "body": "Thanks Ines, I've raised it with product."}]}),
            "2026-06-02-call.vtt": (
                "WEBVTT\n\n00:00:01.000 --> 00:00:06.000\n<v Ines Duarte>The quality has dropped a lot. The team "
                "has stopped trusting the outputs and is frustrated with the product.\n\n00:00:06.500 --> "
                "00:00:09.000\n<v Maya Chen>I understand. Let's go through examples together.\n"),
        },
        "upland": {
            "2026-03-20-escalation.eml": _eml(
                up, CSM, "Fri, 20 Mar 2026 08:00:00 +0000", "Escalation: sync outage",
                "Maya,\n\nI am escalating this to our VP. The sync outage has blocked our field team for a week "
                "and this is unacceptable.\n\nKen", "up-1@upland"),
            "2026-05-12-fixed.eml": _eml(
                up, CSM, "Tue, 12 May 2026 10:00:00 +0000", "Re: Escalation: sync outage",
                "Maya,\n\nThank you, the fix works and the field team is back on track. We really appreciate the "
                "quick turnaround.\n\nKen", "up-2@upland"),
            "2026-06-20-qbr.md": (
                "# Upland Energy business review\nDate: 2026-06-20\nAttendees: Ken Watanabe (Upland), Sara Lind "
                "(Upland), Maya Chen (Brightloop)\n\n- Ken confirmed the tool saved the field team about ten hours "
                "a week.\n- We hit the milestone of all regions live in June.\n"),
        },
    }


def write_workspace(root: Path, *, mapping: str | None = None) -> Path:
    """Write the workspace (accounts.csv, usage.csv, outcomes-free, documents/) under ``root``; returns it.

    ``mapping``: optional metrics.yaml text."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "accounts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "name", "start_date", "end_date", "segment"])
        for aid in STORIES:
            w.writerow([aid, aid.title(), "2025-07-01", "2027-06-30", ""])
    with (root / "usage.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "date", "metric", "value"])
        for aid in STORIES:
            w.writerow([aid, START.isoformat(), "arr_change", 0.12 if aid != "quarry" else 0.0])
            for wk in range(WEEKS):
                day = START + timedelta(days=7 * wk)
                for metric, v in sorted(_usage(aid, wk).items()):
                    w.writerow([aid, day.isoformat(), metric, f"{v:g}"])
            for month in range(1, 7):
                day = date(2026, month, 14)
                for v in _nps_answers(aid, month):
                    w.writerow([aid, day.isoformat(), "nps_responses", v])
                w.writerow([aid, day.isoformat(), "csat_pct", f"{_csat_pct(aid, month):g}"])
    for aid, docs in _documents().items():
        d = root / "documents" / aid
        d.mkdir(parents=True, exist_ok=True)
        for name, text in docs.items():
            (d / name).write_text(text, encoding="utf-8")
    if mapping is not None:
        (root / "metrics.yaml").write_text(mapping, encoding="utf-8")
    return root


FORMATS = (".eml", ".mbox", ".vtt", ".srt", ".json", ".md", ".txt")
