"""A static HTML report of a portfolio: one card per account with an inline SVG score-history chart.

One self-contained file (inline CSS and SVG, no scripts, no CDN), so it opens offline and can be mailed or
archived. Pure: takes scores and narratives, returns the HTML text; the caller writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape

from extractors.models import Account, HealthScore

from extractors.models import Narrative
from scoring.narrate import notable
from scoring.wording import source_label

TIER_COLOURS = {"Healthy": "#2e7d32", "Attention": "#f9a825", "At Risk": "#ef6c00", "Critical": "#c62828"}
_BANDS = (("Healthy", 70, 100, "#e8f5e9"), ("Attention", 50, 70, "#fffde7"), ("At Risk", 30, 50, "#fff3e0"),
          ("Critical", 0, 30, "#ffebee"))
MAX_ACCOUNTS = 2_000
MAX_POINTS = 400


@dataclass
class ReportEntry:
    account: Account
    history: Sequence[HealthScore]  # oldest first
    narrative: Narrative | None = None
    recommendation: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def score_chart(history: Sequence[HealthScore], *, width: int = 560, height: int = 170) -> str:
    """An inline SVG line chart of score over time, on the four tier bands."""
    pts = sorted(history, key=lambda s: s.as_of)[-MAX_POINTS:]
    left, right, top, bottom = 34, 12, 10, 24
    iw, ih = width - left - right, height - top - bottom

    def y(v: float) -> float:
        return top + ih * (1 - max(0.0, min(100.0, v)) / 100)

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="score history">']
    for tier, lo, hi, colour in _BANDS:
        out.append(f'<rect x="{left}" y="{y(hi):.1f}" width="{iw}" height="{y(lo) - y(hi):.1f}" fill="{colour}">'
                   f"<title>{tier} {lo}-{hi}</title></rect>")
    for v in (0, 30, 50, 70, 100):
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">{v}</text>')
    if not pts:
        out.append(f'<text x="{left + iw / 2}" y="{top + ih / 2}" text-anchor="middle" class="axis">no scores yet</text>')
        out.append("</svg>")
        return "".join(out)
    d0, d1 = pts[0].as_of.toordinal(), pts[-1].as_of.toordinal()
    span = max(1, d1 - d0)

    def x(d: date) -> float:
        return left + (iw * (d.toordinal() - d0) / span if len(pts) > 1 else iw / 2)

    coords = [(x(s.as_of), y(s.score)) for s in pts]
    if len(coords) > 1:
        out.append('<polyline fill="none" stroke="#37474f" stroke-width="2" points="'
                   + " ".join(f"{a:.1f},{b:.1f}" for a, b in coords) + '"/>')
    for (a, b), s in zip(coords, pts):
        out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{TIER_COLOURS[s.tier]}">'
                   f"<title>{s.as_of.isoformat()}: {s.score:.1f} ({s.tier})</title></circle>")
    labels = [pts[0]] if len(pts) == 1 else [pts[0], pts[-1]]
    if len(pts) > 4:
        labels.insert(1, pts[len(pts) // 2])
    for s in labels:
        anchor = "start" if s is pts[0] and len(pts) > 1 else "end" if s is pts[-1] and len(pts) > 1 else "middle"
        out.append(f'<text x="{x(s.as_of):.1f}" y="{height - 6}" text-anchor="{anchor}" class="axis">'
                   f"{s.as_of.strftime('%d %b %Y')}</text>")
    out.append("</svg>")
    return "".join(out)


def _drivers_html(n: Narrative, kinds: Mapping[str, str] | None) -> str:
    rows = []
    for d in notable(n.drivers)[:6]:
        cite = ""
        if d.citations:
            c = d.citations[0]
            when = c.occurred_at.strftime("%d %b %Y") if c.occurred_at else "undated"
            who = f", {escape(c.speaker)}" if c.speaker else ""
            cite = (f'<blockquote>\u201c{escape(" ".join(c.quote.split()))}\u201d'
                    f'<footer>{escape(source_label(c, kinds))}, {when}{who}</footer></blockquote>')
        cls = "neg" if d.points < 0 else "pos"
        rows.append(f'<li><span class="pts {cls}">{d.points:+.1f}</span> {escape(d.description)}{cite}</li>')
    return "<ul class=\"drivers\">" + "".join(rows) + "</ul>" if rows else ""


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1000px;color:#263238;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}.sub{color:#607d8b;margin-top:0}
table.portfolio{border-collapse:collapse;width:100%;margin:16px 0 28px}
table.portfolio th,table.portfolio td{border-bottom:1px solid #eceff1;padding:6px 8px;text-align:left}
.tier{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
.card{border:1px solid #cfd8dc;border-radius:8px;padding:14px 18px;margin:18px 0}
.card h2{font-size:18px;margin:0 0 4px}.meta{color:#607d8b;font-size:13px;margin:0 0 8px}
.axis{font-size:10px;fill:#78909c}.chart{max-width:100%;height:auto}
.story{margin:8px 0}.drivers{padding-left:18px}.drivers li{margin:6px 0}
.pts{font-variant-numeric:tabular-nums;font-weight:600;display:inline-block;min-width:44px}
.neg{color:#c62828}.pos{color:#2e7d32}
blockquote{margin:4px 0 4px 8px;padding:2px 10px;border-left:3px solid #b0bec5;color:#455a64}
blockquote footer{font-size:12px;color:#78909c}.action{background:#f1f8e9;padding:6px 10px;border-radius:6px}
"""


def _tier_badge(tier: str) -> str:
    return f'<span class="tier" style="background:{TIER_COLOURS.get(tier, "#607d8b")}">{escape(tier)}</span>'


def render_report(
    entries: Sequence[ReportEntry],
    *,
    title: str = "healthtrace portfolio report",
    subtitle: str = "",
    source_kinds: Mapping[str, str] | None = None,
) -> str:
    """The whole report: a portfolio table (riskiest first) and a card per account."""
    if len(entries) > MAX_ACCOUNTS:
        raise ValueError(f"{len(entries)} accounts; the report is limited to {MAX_ACCOUNTS}")

    def latest(e: ReportEntry) -> HealthScore | None:
        return max(e.history, key=lambda s: s.as_of) if e.history else None

    ordered = sorted(entries, key=lambda e: (latest(e).score if latest(e) else 101.0, e.account.account_id))  # type: ignore[union-attr]
    parts = ["<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{escape(title)}</h1>"]
    if subtitle:
        parts.append(f'<p class="sub">{escape(subtitle)}</p>')
    parts.append('<table class="portfolio"><thead><tr><th>Account</th><th>Score</th><th>Tier</th><th>Change</th>'
                 "<th>Renewal</th><th>As of</th></tr></thead><tbody>")
    for e in ordered:
        s = latest(e)
        name = escape(e.account.name or e.account.account_id)
        change = f"{e.narrative.delta:+.0f}" if e.narrative else ""
        renewal = e.account.end_date.isoformat() if e.account.end_date else ""
        anchor = escape(e.account.account_id, quote=True)
        if s is None:
            parts.append(f'<tr><td><a href="#{anchor}">{name}</a></td><td colspan="5">no score</td></tr>')
            continue
        parts.append(f'<tr><td><a href="#{anchor}">{name}</a></td><td>{s.score:.0f}</td><td>{_tier_badge(s.tier)}</td>'
                     f"<td>{change}</td><td>{renewal}</td><td>{s.as_of.isoformat()}</td></tr>")
    parts.append("</tbody></table>")
    for e in ordered:
        s = latest(e)
        acc = e.account
        parts.append(f'<section class="card" id="{escape(acc.account_id, quote=True)}">')
        head = escape(acc.name or acc.account_id)
        if s is not None:
            head += f" \u2014 {s.score:.0f} {_tier_badge(s.tier)}"
        parts.append(f"<h2>{head}</h2>")
        meta = [escape(acc.account_id)]
        if acc.segment:
            meta.append(escape(acc.segment))
        if acc.end_date:
            meta.append(f"renewal {acc.end_date.isoformat()}")
        meta.extend(f"{escape(k)}: {escape(v)}" for k, v in e.extra.items())
        parts.append('<p class="meta">' + " \u00b7 ".join(meta) + "</p>")
        parts.append(score_chart(e.history))
        if e.narrative is not None:
            n = e.narrative
            story = n.text.split(" Recommended action:")[0]
            parts.append(f'<p class="story"><strong>{n.from_as_of.strftime("%d %b")} \u2192 '
                         f'{n.to_as_of.strftime("%d %b %Y")}:</strong> {escape(story)}</p>')
            parts.append(_drivers_html(n, source_kinds))
            action = (n.recommendation.action if n.recommendation else None) or e.recommendation
            if action:
                parts.append(f'<p class="action"><strong>Next action:</strong> {escape(str(action))}</p>')
        elif e.recommendation:
            parts.append(f'<p class="action"><strong>Next action:</strong> {escape(e.recommendation)}</p>')
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "".join(parts)
