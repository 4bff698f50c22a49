"""Recap Markdown and the HTML report, rendered from hand-made scores."""

from __future__ import annotations

import re
from datetime import date

import pytest
from test_narrate import ACME, AFTER, BEFORE, CALL, CHAMPION, COMPETITOR, EMAIL, _base, _score

from extractors.models import Account
from scoring.narrate import narrate
from scoring.playbooks import load_playbooks
from scoring.recap import render_recap
from scoring.report import ReportEntry, render_report, score_chart

KINDS = {CHAMPION.source_id: "email", COMPETITOR.source_id: "transcript"}


def _recap(audience: str = "csm") -> str:
    n = narrate(BEFORE, AFTER, account=ACME, playbooks=load_playbooks(), source_kinds=KINDS)
    return render_recap(ACME, AFTER, n, audience=audience, days=35, source_kinds=KINDS)  # type: ignore[arg-type]


def test_csm_recap_has_score_changes_evidence_risks_and_next_steps() -> None:
    md = _recap("csm")
    assert md.startswith("# Acme: Account recap (2026-11-05)\n")
    assert "**Health score:** 42/100 (**At Risk**), down 20 points over the last 35 days (was Attention)." in md
    assert "**Renewal:** 2027-03-31 (in 146 days)." in md
    assert "**Model:** default 1.0." in md
    sections = re.findall(r"^## (.+)$", md, flags=re.M)
    assert sections == ["What changed", "Evidence", "Open risks", "Next steps"]
    changed = md.split("## What changed")[1].split("##")[0]
    lines = changed.strip().splitlines()
    assert len(lines) == 3
    for line, facts in zip(lines, [("champion left", "-9"), ("Active users fell 30% a month", "-8"),
                                   ("competitor", "-3")]):
        assert all(f in line for f in facts), line
    # evidence is quoted verbatim, with the kind of source, its date and speaker (paths stay in the JSON)
    evidence = md.split("## Evidence")[1].split("##")[0]
    assert "\u201cToday is my last day at Acme\u201d" in evidence and "email, 3 Nov 2026" in evidence
    assert EMAIL[CHAMPION.start : CHAMPION.end] == CHAMPION.quote
    assert "call, 20 Oct 2026, Lee" in evidence and "we are also looking at Northwind" in evidence
    assert ".eml" not in md and ".txt" not in md
    risks = md.split("## Open risks")[1].split("##")[0]
    assert "champion left" in risks and "Today is my last day at Acme" in risks
    assert "Northwind" in risks and "Active users fell 30% a month" in risks  # subscore 0 < 40
    steps = md.split("## Next steps")[1]
    assert "**Find the new owner within two weeks" in steps and "champion" in steps


def test_exec_recap_is_short_and_has_no_file_detail() -> None:
    md = _recap("exec")
    assert md.startswith("# Acme: Executive summary (2026-11-05)\n")
    assert "acme/2026-11-03-moving-on.eml" not in md and "**Model:**" not in md and "playbook" not in md
    assert "\u201cToday is my last day at Acme\u201d" in md
    assert len(md) < len(_recap("csm"))


def test_recap_without_a_previous_score_and_markdown_escaping() -> None:
    acc = Account(account_id="x", name="*Star* [Co]")
    score = _score(date(2026, 11, 1), [_base(75)], account_id="x")
    md = render_recap(acc, score, None, days=30)
    assert md.startswith("# \\*Star\\* \\[Co\\]: Account recap")
    assert "No earlier score to compare with in the last 30 days." in md
    assert "No open risks in the current score." in md
    assert "No playbook rule matched" in md
    with pytest.raises(ValueError, match="audience"):
        render_recap(acc, score, None, audience="board")  # type: ignore[arg-type]


def test_report_is_self_contained_with_a_chart_per_account() -> None:
    n = narrate(BEFORE, AFTER, account=ACME, playbooks=load_playbooks(), source_kinds=KINDS)
    other = Account(account_id="beta", name="Beta <Labs>")
    beta = [_score(date(2026, m, 28), [_base(60 + m)], account_id="beta") for m in (6, 7, 8)]
    html = render_report([ReportEntry(account=other, history=beta), ReportEntry(account=ACME, history=[BEFORE, AFTER],
                                                                                narrative=n)])
    assert html.count("<svg") == 2 and "<script" not in html and "http://" not in html and "https://" not in html
    assert "Beta &lt;Labs&gt;" in html and "Beta <Labs>" not in html
    # riskiest first in the portfolio table
    assert html.index('href="#acme"') < html.index('href="#beta"')
    # the chart has one point per score, with its value in a tooltip
    chart = score_chart([BEFORE, AFTER])
    assert chart.count("<circle") == 2 and "2026-11-05: 42.0 (At Risk)" in chart
    assert "Today is my last day at Acme" in html and "moving-on.eml" not in html
    assert "Find the new owner within two weeks" in html
    assert "no scores yet" in score_chart([])
