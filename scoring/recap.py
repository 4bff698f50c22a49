"""Account recaps in Markdown, for a CSM's notes or an executive email.

Pure rendering: the caller passes the current score, the narrated change over the recap period and the
account; every statement in the recap comes from a contribution, a citation or a playbook rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from extractors.models import Account, Citation, Contribution, HealthScore

from extractors.models import Narrative
from scoring.narrate import notable
from scoring.wording import SIGNAL_PHRASES, describe_fact, describe_metric, source_label
from scoring.wording import fmt_points as _fmt_points
from scoring.wording import short_quote as _short_quote

Audience = Literal["csm", "exec"]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")
RISK_SUBSCORE = 40.0  # a metric item whose subscore is below this is listed as an open risk


def md_escape(s: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", s)


def _evidence_line(c: Citation, kinds: Mapping[str, str] | None, audience: Audience) -> str:
    label = source_label(c, kinds)
    when = f"{c.occurred_at.day} {c.occurred_at.strftime('%b %Y')}" if c.occurred_at else "undated"
    who = f", {md_escape(c.speaker)}" if c.speaker else ""
    line = f"> \u201c{md_escape(_short_quote(c.quote) if audience == 'exec' else ' '.join(c.quote.split()))}\u201d  \n> \u2014 {label}, {when}{who}"
    return line  # file paths and offsets stay in the JSON, not in a recap a person reads


def open_risks(score: HealthScore, *, limit: int = 6) -> list[Contribution]:
    """Items now taking points away: negative signals, and metrics or facts with a poor subscore."""
    risks = []
    for c in score.contributions:
        if c.kind == "signal" and c.points < 0:
            risks.append(c)
        elif c.kind in ("metric", "fact") and c.metric is not None and c.metric.subscore is not None:
            if c.metric.subscore < RISK_SUBSCORE:
                risks.append(c)
    risks.sort(key=lambda c: (c.points if c.kind == "signal" else -(RISK_SUBSCORE - (c.metric.subscore or 0)) / 10, c.key))  # type: ignore[union-attr]
    return risks[:limit]


def _risk_text(c: Contribution) -> str:
    if c.kind == "signal" and c.signal_type in SIGNAL_PHRASES:
        return SIGNAL_PHRASES[c.signal_type][0]
    if c.kind == "metric" and c.metric is not None:
        return describe_metric(None, c.metric)
    if c.kind == "fact" and c.metric is not None:
        return describe_fact(c.metric.metric, None, c.metric.value)
    return " ".join(c.reason.split())


def render_recap(
    account: Account,
    score: HealthScore,
    narrative: Narrative | None,
    *,
    audience: Audience = "csm",
    days: int = 30,
    source_kinds: Mapping[str, str] | None = None,
    max_drivers: int = 6,
    override: Mapping[str, Any] | None = None,
) -> str:
    """Markdown: score and tier, what changed over ``days``, cited evidence, open risks, next steps."""
    if audience not in ("csm", "exec"):
        raise ValueError(f"unknown audience {audience!r}; expected csm or exec")
    name = account.name or account.account_id
    exec_ = audience == "exec"
    lines: list[str] = []
    title = "Executive summary" if exec_ else "Account recap"
    lines.append(f"# {md_escape(name)}: {title} ({score.as_of.isoformat()})")
    lines.append("")
    status = f"**Health score:** {score.score:.0f}/100 (**{score.tier}**)"
    if narrative is not None:
        d = narrative.delta
        if abs(d) >= 0.5:
            status += f", {'up' if d > 0 else 'down'} {abs(d):.0f} points over the last {days} days"
        else:
            status += f", unchanged over the last {days} days"
        if narrative.tier_move != "none":
            status += f" (was {narrative.from_tier})"
    lines.append(status + ".  ")
    if override:  # the CSM's own call, beside the computed score (never mixed into it)
        from scoring.overrides import override_sentence

        lines.append(md_escape(override_sentence(override, score.score)) + "  ")
    if account.end_date is not None:
        left = (account.end_date - score.as_of).days
        when = f"in {left} days" if left >= 0 else f"{-left} days ago"
        lines.append(f"**Renewal:** {account.end_date.isoformat()} ({when}).  ")
    if account.segment and not exec_:
        lines.append(f"**Segment:** {md_escape(account.segment)}.  ")
    if not exec_:
        lines.append(f"**Model:** {score.model_id} {score.model_version}.")
    lines.append("")

    lines.append("## What changed")
    lines.append("")
    drivers = notable(narrative.drivers)[: (3 if exec_ else max_drivers)] if narrative is not None else []
    if narrative is None:
        lines.append(f"No earlier score to compare with in the last {days} days.")
    elif not drivers:
        lines.append(f"Nothing moved the score by a point or more in the last {days} days.")
    else:
        for d in drivers:
            lines.append(f"- {md_escape(d.description[:1].upper() + d.description[1:])} ({_fmt_points(d.points)} points)")
    lines.append("")

    cited = [(d, d.citations[0]) for d in drivers if d.citations]
    if cited:
        lines.append("## Evidence")
        lines.append("")
        for _, c in cited:
            lines.append(_evidence_line(c, source_kinds, audience))
            lines.append("")

    risks = open_risks(score, limit=3 if exec_ else 6)
    lines.append("## Open risks")
    lines.append("")
    if not risks:
        lines.append("No open risks in the current score.")
    said: set[str] = set()
    for r in risks:
        text = md_escape(_risk_text(r))
        if exec_ and text in said:  # the exec list is a summary; the CSM sees each piece of evidence
            continue
        said.add(text)
        text = text[:1].upper() + text[1:]
        if r.evidence and not exec_:
            c = r.evidence[0]
            when = f" {c.occurred_at.day} {c.occurred_at.strftime('%b')}" if c.occurred_at else ""
            text += f" ({source_label(c, source_kinds)}{when}: \u201c{md_escape(_short_quote(c.quote))}\u201d)"
        lines.append(f"- {text}")
    lines.append("")

    lines.append("## Next steps")
    lines.append("")
    rec = narrative.recommendation if narrative is not None else None
    if rec is None:
        lines.append("- No playbook rule matched; agree next steps with the account team.")
    else:
        lines.append(f"- **{md_escape(rec.action)}**" + ("" if exec_ or not rec.why else f" _({md_escape(rec.why)})_"))
        if not exec_ and narrative is not None:
            for alt in narrative.alternatives[:2]:
                lines.append(f"- {md_escape(alt.action)}" + (f" _({md_escape(alt.why)})_" if alt.why else ""))
    lines.append("")
    return "\n".join(lines)
