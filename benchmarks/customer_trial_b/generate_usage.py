"""Writes usage.csv of customer trial B: weekly product-usage exports of eight Crewmark accounts.

Deterministic (a seeded random stream per account and metric), so the file is reproducible: run
`python3 generate_usage.py` from this folder (or pass an output path) and `git diff` shows nothing.

The accounts come from two export families, as the customers' own tooling writes them:
  X  active_technicians_wk, seats_licensed, jobs_scheduled, open_cases, escalated_cases (cases escalated to
     priority 1), nps_avg (mean survey response 0-10), auto_match_rate (0-1 share of SmartSlot suggestions kept),
     days_invoice_late, arr_delta_pct
  Y  field_users_active, licence_count, support_backlog, sev_a_cases, nps_index (-100..100), csat_pct (0-100),
     ai_route_uptake_pct (0-100 percent of suggested routes accepted), weekly_logins, ar_days_outstanding
NPS / CSAT surveys arrive every fourth week; a metric with ``None`` keyframes after a date stops reporting.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import date, timedelta
from pathlib import Path

FIRST_WEEK = date(2026, 4, 27)  # a Monday
WEEKS = 26  # to 2026-10-19
SURVEY_METRICS = {"nps_avg", "nps_index", "csat_pct"}
# contract, billing and incident figures are exact: no week-to-week wobble
EXACT_METRICS = {"seats_licensed", "licence_count", "days_invoice_late", "ar_days_outstanding", "arr_delta_pct",
                 "escalated_cases", "sev_a_cases"}
# survey wobble (absolute); other float metrics wobble by 1% of their value
SURVEY_SPAN = {"nps_avg": 0.1, "nps_index": 2.0, "csat_pct": 1.0}

Curve = tuple[str, list[tuple[str, float | None]]]

STORIES: dict[str, dict[str, Curve]] = {
    "harbourline-hvac": {  # X: the champion leaves on 14 August, nobody picks the board up
        "active_technicians_wk": ("int", [("2026-05-01", 112), ("2026-06-15", 128), ("2026-08-10", 127), ("2026-10-19", 74)]),
        "seats_licensed": ("int", [("2026-04-27", 140)]),
        "jobs_scheduled": ("int", [("2026-05-01", 1850), ("2026-06-15", 2100), ("2026-08-10", 2080), ("2026-10-19", 1300)]),
        "open_cases": ("int", [("2026-04-27", 6), ("2026-08-10", 6), ("2026-10-19", 11)]),
        "escalated_cases": ("int", [("2026-04-27", 0)]),
        "nps_avg": ("float1", [("2026-04-27", 8.4), ("2026-07-27", 8.6), ("2026-10-19", 6.1)]),
        "auto_match_rate": ("float3", [("2026-04-27", 0.61), ("2026-08-10", 0.67), ("2026-10-19", 0.44)]),
        "days_invoice_late": ("int", [("2026-04-27", 0)]),
        "arr_delta_pct": ("float1", [("2026-04-27", 0.0)]),
    },
    "granite-elevators": {  # Y: renewal pricing fight with a competitor quote from August
        "field_users_active": ("int", [("2026-04-27", 56), ("2026-08-10", 57), ("2026-10-19", 50)]),
        "licence_count": ("int", [("2026-04-27", 60)]),
        "support_backlog": ("int", [("2026-04-27", 5), ("2026-10-19", 7)]),
        "sev_a_cases": ("int", [("2026-04-27", 0)]),
        "nps_index": ("int", [("2026-04-27", 34), ("2026-07-27", 31), ("2026-10-19", 2)]),
        "csat_pct": ("float1", [("2026-04-27", 86.0), ("2026-07-27", 85.0), ("2026-10-19", 79.0)]),
        "ai_route_uptake_pct": ("float1", [("2026-04-27", 52.0), ("2026-10-19", 50.0)]),
        "weekly_logins": ("int", [("2026-04-27", 610), ("2026-08-10", 620), ("2026-10-19", 540)]),
        "ar_days_outstanding": ("int", [("2026-04-27", 0)]),
    },
    "kestrel-security": {  # Y: repeated mobile sync outages from 13 July, escalation to the COO
        "field_users_active": ("int", [("2026-04-27", 190), ("2026-07-13", 205), ("2026-10-19", 168)]),
        "licence_count": ("int", [("2026-04-27", 220)]),
        "support_backlog": ("int", [("2026-04-27", 9), ("2026-07-13", 10), ("2026-08-24", 27), ("2026-10-19", 24)]),
        "sev_a_cases": ("int", [("2026-04-27", 0), ("2026-07-13", 0), ("2026-07-27", 2), ("2026-08-10", 4), ("2026-09-14", 3), ("2026-10-19", 3)]),
        "nps_index": ("int", [("2026-04-27", 28), ("2026-07-13", 30), ("2026-10-19", -12)]),
        "csat_pct": ("float1", [("2026-04-27", 88.0), ("2026-07-13", 87.0), ("2026-09-14", 61.0), ("2026-10-19", 64.0)]),
        "ai_route_uptake_pct": ("float1", [("2026-04-27", 58.0), ("2026-10-19", 54.0)]),
        "weekly_logins": ("int", [("2026-04-27", 2100), ("2026-07-13", 2250), ("2026-10-19", 1750)]),
        "ar_days_outstanding": ("int", [("2026-04-27", 0)]),
    },
    "alder-water": {  # X: healthy use (sewer crews join mid-September); the renewal stalls in legal, security and procurement; the PO lapses
        "active_technicians_wk": ("int", [("2026-04-27", 300), ("2026-09-07", 306), ("2026-09-21", 330), ("2026-10-19", 332)]),
        "seats_licensed": ("int", [("2026-04-27", 340)]),
        "jobs_scheduled": ("int", [("2026-04-27", 5200), ("2026-10-19", 5400)]),
        "open_cases": ("int", [("2026-04-27", 8)]),
        "escalated_cases": ("int", [("2026-04-27", 0)]),
        "nps_avg": ("float1", [("2026-04-27", 8.2)]),
        "auto_match_rate": ("float3", [("2026-04-27", 0.66), ("2026-10-19", 0.69)]),
        "days_invoice_late": ("int", [("2026-04-27", 0), ("2026-09-07", 0), ("2026-10-19", 42)]),
        "arr_delta_pct": ("float1", [("2026-04-27", 0.0)]),
    },
    "sunvale-solar": {  # Y: layoffs, 45 -> 30 licences in August, late invoices, not renewing (Jobber)
        "field_users_active": ("int", [("2026-04-27", 40), ("2026-07-13", 37), ("2026-08-03", 26), ("2026-10-19", 14)]),
        "licence_count": ("int", [("2026-04-27", 45), ("2026-07-27", 45), ("2026-08-03", 30)]),
        "support_backlog": ("int", [("2026-04-27", 3)]),
        "sev_a_cases": ("int", [("2026-04-27", 0)]),
        "nps_index": ("int", [("2026-04-27", 22), ("2026-07-13", 15), ("2026-10-19", -30)]),
        "csat_pct": ("float1", [("2026-04-27", 82.0), ("2026-07-13", 80.0), ("2026-10-19", 70.0)]),
        "ai_route_uptake_pct": ("float1", [("2026-04-27", 41.0), ("2026-10-19", 30.0)]),
        "weekly_logins": ("int", [("2026-04-27", 420), ("2026-07-13", 390), ("2026-10-19", 140)]),
        # August invoice due 15 Aug, paid 15 Oct; the September invoice (due 15 Sep) is then the oldest one
        "ar_days_outstanding": ("int", [("2026-04-27", 0), ("2026-08-15", 0), ("2026-10-12", 58), ("2026-10-19", 34)]),
    },
    "medisphere-biomed": {  # X: all four regions live by 31 August, 40 imaging licences from 5 October
        "active_technicians_wk": ("int", [("2026-05-01", 120), ("2026-07-20", 175), ("2026-08-31", 238), ("2026-10-05", 245), ("2026-10-19", 252)]),
        "seats_licensed": ("int", [("2026-04-27", 260), ("2026-09-28", 260), ("2026-10-05", 300)]),
        "jobs_scheduled": ("int", [("2026-04-27", 2400), ("2026-08-31", 4300), ("2026-10-19", 4700)]),
        "open_cases": ("int", [("2026-04-27", 14), ("2026-07-20", 10), ("2026-10-19", 6)]),
        "escalated_cases": ("int", [("2026-04-27", 1), ("2026-06-15", 0)]),
        "nps_avg": ("float1", [("2026-04-27", 7.4), ("2026-10-19", 8.8)]),
        "auto_match_rate": ("float3", [("2026-04-27", 0.52), ("2026-10-19", 0.73)]),
        "days_invoice_late": ("int", [("2026-04-27", 0)]),
        "arr_delta_pct": ("float1", [("2026-04-27", 0.0), ("2026-09-28", 0.0), ("2026-10-05", 15.4)]),
    },
    "thornbury-pest": {  # Y: site import blocker until late July, then Route Planner live and a recovery
        "field_users_active": ("int", [("2026-04-27", 14), ("2026-07-20", 16), ("2026-08-10", 35), ("2026-10-19", 37)]),
        "licence_count": ("int", [("2026-04-27", 38)]),
        "support_backlog": ("int", [("2026-04-27", 15), ("2026-07-20", 12), ("2026-09-07", 4), ("2026-10-19", 3)]),
        "sev_a_cases": ("int", [("2026-04-27", 2), ("2026-06-29", 1), ("2026-07-27", 0)]),
        "nps_index": ("int", [("2026-04-27", -8), ("2026-07-13", 0), ("2026-10-19", 41)]),
        "csat_pct": ("float1", [("2026-04-27", 68.0), ("2026-07-13", 72.0), ("2026-10-19", 91.0)]),
        "ai_route_uptake_pct": ("float1", [("2026-04-27", 8.0), ("2026-07-27", 10.0), ("2026-08-17", 55.0), ("2026-10-19", 66.0)]),
        "weekly_logins": ("int", [("2026-04-27", 150), ("2026-07-20", 180), ("2026-08-17", 390), ("2026-10-19", 420)]),
        "ar_days_outstanding": ("int", [("2026-04-27", 0)]),
    },
    "lumen-facilities": {  # X: steady; a small summer dip in reactive jobs
        "active_technicians_wk": ("int", [("2026-04-27", 86), ("2026-10-19", 88)]),
        "seats_licensed": ("int", [("2026-04-27", 95)]),
        "jobs_scheduled": ("int", [("2026-04-27", 1500), ("2026-07-13", 1500), ("2026-08-10", 1420), ("2026-09-07", 1510), ("2026-10-19", 1500)]),
        "open_cases": ("int", [("2026-04-27", 4)]),
        "escalated_cases": ("int", [("2026-04-27", 0)]),
        "nps_avg": ("float1", [("2026-04-27", 8.5)]),
        "auto_match_rate": ("float3", [("2026-04-27", 0.70)]),
        "days_invoice_late": ("int", [("2026-04-27", 0)]),
        "arr_delta_pct": ("float1", [("2026-04-27", 0.0)]),
    },
}


def _value(keys: list[tuple[str, float | None]], day: date) -> float | None:
    points = [(date.fromisoformat(d), v) for d, v in keys]
    if day <= points[0][0]:
        return points[0][1]
    for (d0, v0), (d1, v1) in zip(points, points[1:]):
        if d0 <= day < d1:
            if v0 is None or v1 is None:
                return v0
            return v0 + (v1 - v0) * (day - d0).days / (d1 - d0).days
    return points[-1][1]


def rows() -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    for account, metrics in STORIES.items():
        for metric, (kind, keys) in metrics.items():
            rng = random.Random(f"trial-b/{account}/{metric}")
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
                    if metric in SURVEY_SPAN:
                        v = round(base + SURVEY_SPAN[metric] * noise)
                        text = str(int(v))  # NPS may be negative
                    else:
                        # counts wobble by about 2%; zero stays zero (no invented cases)
                        v = round(base * (1 + 0.02 * noise)) if base else 0
                        text = str(max(0, int(v)))
                else:
                    digits = int(kind[-1])
                    span = SURVEY_SPAN.get(metric, 0.01 * abs(base))
                    value = base + span * noise
                    if metric == "csat_pct":
                        value = min(100.0, max(0.0, value))
                    if metric == "auto_match_rate":
                        value = min(1.0, max(0.0, value))
                    text = f"{value:.{digits}f}"
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
