"""Deterministic synthetic workspaces (short business emails) for the ingest benchmark and integrity tests.

Not evaluation data: the texts are assembled from a few dozen hand-written sentences so the pipeline sees
realistic shapes (headers, greetings, complaints, renewals, praise, sign-offs) at any volume.
"""

from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

_FIRST = ["Dana", "Sam", "Priya", "Marco", "Lena", "Tom", "Aisha", "Jonas", "Mei", "Carlos", "Ruth", "Omar"]
_LAST = ["Reyes", "Lee", "Shah", "Rossi", "Berg", "Hart", "Khan", "Weber", "Chen", "Diaz", "Ortiz", "Novak"]
_SUBJECTS = ["Quick update", "Dashboard latency", "Renewal discussion", "Onboarding progress", "Invoice question",
             "Feature request: SSO", "QBR follow-up", "Support ticket escalation", "Training sessions", "Pricing"]
_OPENERS = ["Thanks for the call yesterday.", "Following up on our last meeting.", "Hope you had a good week.",
            "Quick note before the weekend.", "As promised, here is where we stand."]
_BODY = [
    "The dashboards took over a minute to load again this morning and the analysts are frustrated.",
    "Our team has fully rolled out the reporting module to all four regions.",
    "We are evaluating other vendors because the price increase is hard to justify.",
    "Honestly, we are thinking about cancelling our subscription at the end of the term.",
    "The new forecasting feature saved the finance team two days of work this month.",
    "We still cannot log in with SSO, which blocks the contractors from using the product.",
    "Our executive sponsor left the company last week, so we need to re-introduce the project.",
    "The support team resolved our ticket quickly, thank you for that.",
    "Usage dropped after the holidays; only a handful of people open the reports now.",
    "We would like to expand to the Berlin office and add fifty more seats next quarter.",
    "The invoice for March was charged twice and our payment failed on the retry.",
    "We hit our goal of cutting report preparation time from two days to two hours.",
    "Could you escalate this to your engineering manager? It has been open for three weeks.",
    "The CFO asked for a business case before we commit to renewing the contract.",
    "Everyone loved the training session, the team is much more confident now.",
    "The integration with our CRM keeps failing with a timeout error.",
]
_CLOSERS = ["Let me know what you think.", "Happy to discuss on Thursday.", "Looking forward to your reply.",
            "Please advise on next steps."]


def email_text(rng: random.Random, account: str, sent: datetime) -> str:
    """One short business email with RFC 822 headers (~400-900 characters)."""
    a, b = rng.sample(range(len(_FIRST)), 2)
    sender = f"{_FIRST[a]} {_LAST[rng.randrange(len(_LAST))]}"
    to = f"{_FIRST[b]} {_LAST[rng.randrange(len(_LAST))]}"
    lines = [
        f"From: {sender} <{_FIRST[a].lower()}@{account}.example>",
        f"To: {to} <{_FIRST[b].lower()}@vendor.example>",
        f"Subject: {rng.choice(_SUBJECTS)}",
        f"Date: {sent.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        "",
        f"Hi {_FIRST[b]},",
        "",
        rng.choice(_OPENERS) + " " + " ".join(rng.sample(_BODY, rng.randint(2, 4))),
        "",
        " ".join(rng.sample(_BODY, rng.randint(1, 2))) + " " + rng.choice(_CLOSERS),
        "",
        "Best,",
        _FIRST[a],
        "",
    ]
    return "\n".join(lines)


def generate_workspace(root: str | Path, n_documents: int, *, n_accounts: int = 20, seed: int = 7) -> Path:
    """Write accounts.csv, usage.csv, outcomes.csv and ``n_documents`` emails under ``root``."""
    root = Path(root)
    rng = random.Random(seed)
    accounts = [f"acct{i:04d}" for i in range(max(1, n_accounts))]
    (root / "documents").mkdir(parents=True, exist_ok=True)
    start = date(2024, 1, 1)
    with (root / "accounts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "name", "start_date", "end_date", "segment"])
        for i, a in enumerate(accounts):
            w.writerow([a, f"Account {i}", start.isoformat(), (start + timedelta(days=365)).isoformat(),
                        rng.choice(["smb", "mid-market", "enterprise"])])
    with (root / "usage.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "date", "metric", "value"])
        for a in accounts:
            for week in range(26):
                w.writerow([a, (start + timedelta(days=7 * week)).isoformat(), "active_users", rng.randint(0, 200)])
    with (root / "outcomes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "date", "outcome"])
        for a in accounts[: len(accounts) // 4]:
            w.writerow([a, (start + timedelta(days=365)).isoformat(), rng.choice(["churned", "renewed"])])
    for i in range(n_documents):
        account = accounts[i % len(accounts)]
        sent = datetime(2024, 1, 1, 9, tzinfo=timezone.utc) + timedelta(hours=7 * i + rng.randint(0, 6))
        d = root / "documents" / account
        d.mkdir(exist_ok=True)
        (d / f"{i:06d}.eml").write_text(email_text(rng, account, sent), encoding="utf-8")
    return root
