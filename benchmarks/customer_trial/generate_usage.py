"""Writes usage.csv of the customer trial: weekly product-usage exports of ten Brightloop accounts.

Deterministic (a seeded random stream per account and metric), so the file is reproducible: run
`python benchmarks/customer_trial/generate_usage.py` and `git diff` shows nothing.

The accounts come from three export families, as a new customer's own tools would write them:
  A  weekly_active_users, licenses, tickets_open, p1_tickets, nps_score (-100..100),
     ai_suggestions_accepted_pct (a 0-1 share despite its name), invoice_days_overdue
  B  wau, licensed_seats, open_tickets, sev1_tickets, nps (mean survey response 0-10),
     pct_ai_accepted (0-100 percent), logins_30d, arr_change_pct
  C  active_users_weekly, seats_purchased, support_tickets_open, critical_tickets, nps_response (0-10),
     ai_acceptance_rate (0-1 share), logins_30d, csat (1-5), days_past_due
NPS / CSAT surveys arrive every fourth week; a metric with ``None`` keyframes after a date stops reporting.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import date, timedelta
from pathlib import Path

FIRST_WEEK = date(2026, 4, 27)  # a Monday
WEEKS = 26  # to 2026-10-19, 175 days
SURVEY_METRICS = {"nps_score", "nps", "nps_response", "csat"}
# contract and billing figures are exact: no week-to-week wobble
EXACT_METRICS = {"licenses", "licensed_seats", "seats_purchased", "invoice_days_overdue", "days_past_due",
                 "arr_change_pct", "p1_tickets", "sev1_tickets", "critical_tickets"}

# kind: int (count), float1/2/3 (decimals); keyframes: (iso date, value) with linear interpolation between
# them and the first/last value held outside; a value of None means "no row from this date on".
Curve = tuple[str, list[tuple[str, float | None]]]

STORIES: dict[str, dict[str, Curve]] = {
    "northwind-freight": {  # A: the champion leaves in August, usage falls
        "weekly_active_users": ("int", [("2026-05-01", 95), ("2026-06-15", 148), ("2026-08-10", 150), ("2026-10-19", 86)]),
        "licenses": ("int", [("2026-04-27", 160)]),
        "tickets_open": ("int", [("2026-04-27", 12), ("2026-08-10", 11), ("2026-10-19", 19)]),
        "p1_tickets": ("int", [("2026-04-27", 0), ("2026-09-20", 0), ("2026-10-05", 1)]),
        "nps_score": ("int", [("2026-04-27", 42), ("2026-07-27", 46), ("2026-10-19", 8)]),
        "ai_suggestions_accepted_pct": ("float3", [("2026-04-27", 0.58), ("2026-07-20", 0.64), ("2026-10-19", 0.55)]),
        "invoice_days_overdue": ("int", [("2026-04-27", 0)]),
    },
    "quarry-labs": {  # B: Berlin goes live, Lisbon is added (60 seats from October)
        "wau": ("int", [("2026-04-27", 30), ("2026-06-22", 38), ("2026-07-13", 60), ("2026-09-28", 66), ("2026-10-19", 101)]),
        "licensed_seats": ("int", [("2026-04-27", 50), ("2026-09-28", 50), ("2026-10-05", 110)]),
        "open_tickets": ("int", [("2026-04-27", 6)]),
        "sev1_tickets": ("int", [("2026-04-27", 0)]),
        "nps": ("float1", [("2026-04-27", 8.3), ("2026-10-19", 8.9)]),
        "pct_ai_accepted": ("float1", [("2026-04-27", 63.0), ("2026-10-19", 74.0)]),
        "logins_30d": ("int", [("2026-04-27", 600), ("2026-07-13", 1150), ("2026-09-28", 1300), ("2026-10-19", 1850)]),
        "arr_change_pct": ("float1", [("2026-04-27", 0.0), ("2026-09-28", 0.0), ("2026-10-05", 120.0)]),
    },
    "helix-dental": {  # A: invoice dispute from late July, the bill goes unpaid
        "weekly_active_users": ("int", [("2026-04-27", 70), ("2026-07-27", 72), ("2026-10-19", 64)]),
        "licenses": ("int", [("2026-04-27", 90)]),
        "tickets_open": ("int", [("2026-04-27", 5), ("2026-08-24", 6), ("2026-10-19", 9)]),
        "p1_tickets": ("int", [("2026-04-27", 0)]),
        "nps_score": ("int", [("2026-04-27", 38), ("2026-07-27", 40), ("2026-10-19", 18)]),
        "ai_suggestions_accepted_pct": ("float3", [("2026-04-27", 0.66)]),
        "invoice_days_overdue": ("int", [("2026-04-27", 0), ("2026-07-27", 0), ("2026-10-19", 84)]),
    },
    "orchard-media": {  # C: silence from June, logins collapse, surveys stop coming back
        "active_users_weekly": ("int", [("2026-04-27", 16), ("2026-06-08", 17), ("2026-10-19", 6)]),
        "seats_purchased": ("int", [("2026-04-27", 20)]),
        "support_tickets_open": ("int", [("2026-04-27", 2)]),
        "critical_tickets": ("int", [("2026-04-27", 0)]),
        "nps_response": ("float1", [("2026-04-27", 8.5), ("2026-07-06", 8.0), ("2026-07-13", None)]),
        "ai_acceptance_rate": ("float3", [("2026-04-27", 0.61), ("2026-10-19", 0.50)]),
        "logins_30d": ("int", [("2026-04-27", 300), ("2026-06-08", 310), ("2026-10-19", 85)]),
        "csat": ("float2", [("2026-04-27", 4.5), ("2026-07-06", 4.4), ("2026-07-13", None)]),
        "days_past_due": ("int", [("2026-04-27", 0)]),
    },
    "tidewater-insurance": {  # B: rollout in June/July, then the July update breaks reply quality
        "wau": ("int", [("2026-04-27", 58), ("2026-06-08", 120), ("2026-07-13", 182), ("2026-08-17", 150), ("2026-10-19", 92)]),
        "licensed_seats": ("int", [("2026-04-27", 60), ("2026-05-25", 60), ("2026-06-01", 200)]),
        "open_tickets": ("int", [("2026-04-27", 8), ("2026-07-13", 9), ("2026-09-07", 26), ("2026-10-19", 21)]),
        "sev1_tickets": ("int", [("2026-04-27", 0), ("2026-07-27", 0), ("2026-08-10", 3), ("2026-10-19", 2)]),
        "nps": ("float1", [("2026-04-27", 8.0), ("2026-07-13", 8.1), ("2026-10-19", 5.8)]),
        "pct_ai_accepted": ("float1", [("2026-04-27", 71.0), ("2026-07-13", 70.0), ("2026-08-17", 44.0), ("2026-09-07", 38.0), ("2026-10-19", 41.0)]),
        "logins_30d": ("int", [("2026-04-27", 1500), ("2026-07-13", 4200), ("2026-10-19", 2500)]),
        "arr_change_pct": ("float1", [("2026-04-27", 0.0)]),
    },
    "copperline-energy": {  # C: outages and an SSO blocker in spring, recovery from August
        "active_users_weekly": ("int", [("2026-04-27", 180), ("2026-07-27", 210), ("2026-08-10", 390), ("2026-10-19", 405)]),
        "seats_purchased": ("int", [("2026-04-27", 420)]),
        "support_tickets_open": ("int", [("2026-04-27", 40), ("2026-07-13", 24), ("2026-10-19", 9)]),
        "critical_tickets": ("int", [("2026-04-27", 4), ("2026-06-08", 2), ("2026-07-13", 1), ("2026-08-03", 0)]),
        "nps_response": ("float1", [("2026-04-27", 5.8), ("2026-07-13", 6.4), ("2026-10-19", 8.3)]),
        "ai_acceptance_rate": ("float3", [("2026-04-27", 0.48), ("2026-10-19", 0.66)]),
        "logins_30d": ("int", [("2026-04-27", 2500), ("2026-07-27", 2900), ("2026-09-07", 7000), ("2026-10-19", 7200)]),
        "csat": ("float2", [("2026-04-27", 3.1), ("2026-07-13", 3.6), ("2026-10-19", 4.5)]),
        "days_past_due": ("int", [("2026-04-27", 0)]),
    },
    "vantage-legal": {  # A: competitor evaluation from August, slow usage decline
        "weekly_active_users": ("int", [("2026-04-27", 48), ("2026-07-13", 50), ("2026-10-19", 40)]),
        "licenses": ("int", [("2026-04-27", 55)]),
        "tickets_open": ("int", [("2026-04-27", 7), ("2026-10-19", 9)]),
        "p1_tickets": ("int", [("2026-04-27", 0)]),
        "nps_score": ("int", [("2026-04-27", 15), ("2026-07-13", 12), ("2026-10-19", -6)]),
        "ai_suggestions_accepted_pct": ("float3", [("2026-04-27", 0.52), ("2026-10-19", 0.47)]),
        "invoice_days_overdue": ("int", [("2026-04-27", 0)]),
    },
    "meridian-schools": {  # C: steady; the school summer holiday dips usage from late July to early September
        "active_users_weekly": ("int", [("2026-04-27", 62), ("2026-07-20", 63), ("2026-07-27", 24), ("2026-08-24", 26), ("2026-09-07", 63), ("2026-10-19", 64)]),
        "seats_purchased": ("int", [("2026-04-27", 70)]),
        "support_tickets_open": ("int", [("2026-04-27", 3)]),
        "critical_tickets": ("int", [("2026-04-27", 0)]),
        "nps_response": ("float1", [("2026-04-27", 8.8)]),
        "ai_acceptance_rate": ("float3", [("2026-04-27", 0.71)]),
        "logins_30d": ("int", [("2026-04-27", 1100), ("2026-07-20", 1120), ("2026-08-17", 520), ("2026-09-14", 1100), ("2026-10-19", 1110)]),
        "csat": ("float2", [("2026-04-27", 4.7)]),
        "days_past_due": ("int", [("2026-04-27", 0)]),
    },
    "pinecrest-hotels": {  # B: budget objection, then an explicit non-renewal; resorts drift away
        "wau": ("int", [("2026-04-27", 76), ("2026-07-13", 70), ("2026-10-19", 50)]),
        "licensed_seats": ("int", [("2026-04-27", 110)]),
        "open_tickets": ("int", [("2026-04-27", 4)]),
        "sev1_tickets": ("int", [("2026-04-27", 0)]),
        "nps": ("float1", [("2026-04-27", 7.1), ("2026-10-19", 6.4)]),
        "pct_ai_accepted": ("float1", [("2026-04-27", 58.0), ("2026-10-19", 55.0)]),
        "logins_30d": ("int", [("2026-04-27", 1300), ("2026-07-13", 1200), ("2026-10-19", 780)]),
        "arr_change_pct": ("float1", [("2026-04-27", 0.0)]),
    },
    "saltmarsh-bank": {  # C: healthy usage throughout; the renewal stalls in procurement (text only)
        "active_users_weekly": ("int", [("2026-04-27", 112)]),
        "seats_purchased": ("int", [("2026-04-27", 120)]),
        "support_tickets_open": ("int", [("2026-04-27", 6)]),
        "critical_tickets": ("int", [("2026-04-27", 0)]),
        "nps_response": ("float1", [("2026-04-27", 8.1)]),
        "ai_acceptance_rate": ("float3", [("2026-04-27", 0.69)]),
        "logins_30d": ("int", [("2026-04-27", 2400)]),
        "csat": ("float2", [("2026-04-27", 4.4)]),
        "days_past_due": ("int", [("2026-04-27", 0)]),
    },
}


def _value(keys: list[tuple[str, float | None]], day: date) -> float | None:
    points = [(date.fromisoformat(d), v) for d, v in keys]
    if day <= points[0][0]:
        return points[0][1]
    for (d0, v0), (d1, v1) in zip(points, points[1:], strict=False):
        if d0 <= day < d1:
            if v0 is None or v1 is None:
                return v0
            return v0 + (v1 - v0) * (day - d0).days / (d1 - d0).days
    return points[-1][1]


def rows() -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    for account, metrics in STORIES.items():
        for metric, (kind, keys) in metrics.items():
            rng = random.Random(f"{account}/{metric}")
            for w in range(WEEKS):
                day = FIRST_WEEK + timedelta(days=7 * w)
                if metric in SURVEY_METRICS and w % 4:
                    rng.random()  # keep the stream aligned whatever the cadence
                    continue
                base = _value(keys, day)
                noise = 0.0 if metric in EXACT_METRICS else rng.uniform(-1.0, 1.0)
                if base is None:
                    continue
                if kind == "int":
                    # counts wobble by about 2%; zero stays zero (no invented tickets)
                    v = round(base * (1 + 0.02 * noise)) if base else 0
                    text = str(max(0, int(v)))
                else:
                    digits = int(kind[-1])
                    span = {"nps": 0.1, "nps_response": 0.1, "csat": 0.05}.get(metric, 0.01 * abs(base))
                    text = f"{base + span * noise:.{digits}f}"
                out.append((account, day.isoformat(), metric, text))
    out.sort(key=lambda r: (r[0], r[1], r[2]))
    return out


def write(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["account_id", "date", "metric", "value"])
        w.writerows(rows())


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("usage.csv"))
