"""A small synthetic churn workspace for calibration, backtest, what-if and leakage tests.

Churners' weekly logins fade over the ~two months before they churn; everyone else logs in steadily. A noise
metric carries no signal. Deterministic (seeded), a few thousand rows, written as a workspace folder.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

START = date(2023, 1, 2)


def make_rows(n_accounts: int = 240, seed: int = 7) -> tuple[list[dict], list[tuple], list[tuple]]:
    rng = random.Random(seed)
    accounts, usage, outcomes = [], [], []
    for i in range(n_accounts):
        aid = f"acct-{i:04d}"
        start = START + timedelta(days=rng.randrange(0, 120))
        end = start + timedelta(days=360)
        churn = start + timedelta(days=rng.randrange(90, 330)) if rng.random() < 0.35 else None
        accounts.append({"account_id": aid, "name": f"Account {i}", "start_date": start.isoformat(),
                         "end_date": end.isoformat(), "segment": "smb" if i % 2 else "mid"})
        d = start + timedelta(days=7)
        last = churn or end
        while d < last:
            level = 10.0
            if churn is not None:
                left = (churn - d).days
                if left < 70:
                    level = max(0.5, 10.0 * left / 70)
            usage.append((aid, d.isoformat(), "logins", float(max(0, round(rng.gauss(level, 2.0))))))
            if rng.random() < 0.3:
                usage.append((aid, d.isoformat(), "noise", float(rng.randrange(0, 5))))
            d += timedelta(days=7)
        if churn is not None:
            outcomes.append((aid, churn.isoformat(), "churned"))
        else:
            outcomes.append((aid, end.isoformat(), "renewed"))
    return accounts, usage, outcomes


def write_workspace(root: Path, n_accounts: int = 240, seed: int = 7, *, until: date | None = None) -> Path:
    """The workspace folder; ``until`` keeps only what was known by that date (as the evaluation harness does)."""
    accounts, usage, outcomes = make_rows(n_accounts, seed)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "accounts.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["account_id", "name", "start_date", "end_date", "segment"])
        w.writeheader()
        w.writerows(a for a in accounts if until is None or date.fromisoformat(a["start_date"]) <= until)
    with (root / "usage.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "date", "metric", "value"])
        w.writerows(u for u in usage if until is None or date.fromisoformat(u[1]) <= until)
    with (root / "outcomes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "date", "outcome"])
        w.writerows(o for o in outcomes if until is None or date.fromisoformat(o[1]) <= until)
    return root
