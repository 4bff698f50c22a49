"""Self-contained HTML/SVG charts (no plotting library, no scripts, no network): a report opens anywhere."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 720, 300, 50, 160, 30, 60


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def line_chart(title: str, x_labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
               y_min: float = 0.0, y_max: float = 1.0, y_label: str = "") -> str:
    """Lines over categorical x (dates); gaps where a value is None."""
    n = max(1, len(x_labels))
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    span = (y_max - y_min) or 1.0

    def px(i: int) -> float:
        return PAD_L + (pw * i / (n - 1) if n > 1 else pw / 2)

    def py(v: float) -> float:
        return PAD_T + ph * (1 - (min(max(v, y_min), y_max) - y_min) / span)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="{_esc(title)}">',
           f'<text x="{PAD_L}" y="18" font-size="14" font-weight="bold">{_esc(title)}</text>']
    for k in range(6):
        v = y_min + span * k / 5
        y = py(v)
        out.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{PAD_L + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{v:.2f}</text>')
    step = max(1, n // 12)
    for i, lab in enumerate(x_labels):
        if i % step == 0:
            x = px(i)
            out.append(f'<text x="{x:.1f}" y="{PAD_T + ph + 14}" font-size="9" text-anchor="end" '
                       f'transform="rotate(-40 {x:.1f} {PAD_T + ph + 14})">{_esc(lab)}</text>')
    if y_label:
        out.append(f'<text x="12" y="{PAD_T + ph / 2:.0f}" font-size="10" transform="rotate(-90 12 '
                   f'{PAD_T + ph / 2:.0f})" text-anchor="middle">{_esc(y_label)}</text>')
    for si, (name, vals) in enumerate(series.items()):
        color = _COLORS[si % len(_COLORS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(vals):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{px(i):.1f},{py(v):.1f}")
            out.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.5" fill="{color}">'
                       f'<title>{_esc(name)} {_esc(x_labels[i])}: {v:.3f}</title></circle>')
        for r in runs:
            if len(r) > 1:
                out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{" ".join(r)}"/>')
        ly = PAD_T + 14 * si
        out.append(f'<rect x="{W - PAD_R + 10}" y="{ly}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{W - PAD_R + 24}" y="{ly + 9}" font-size="11">{_esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(title: str, bars: Sequence[tuple[str, float | None, str]], *, y_max: float | None = None,
              y_label: str = "") -> str:
    """Bars of (label, value, note); the note shows under the label (e.g. the count behind a rate)."""
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    vals = [v for _, v, _ in bars if v is not None]
    top = y_max if y_max is not None else (max(vals) * 1.15 if vals and max(vals) > 0 else 1.0)
    n = max(1, len(bars))
    bw = pw / n
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="{_esc(title)}">',
           f'<text x="{PAD_L}" y="18" font-size="14" font-weight="bold">{_esc(title)}</text>',
           f'<line x1="{PAD_L}" y1="{PAD_T + ph}" x2="{PAD_L + pw}" y2="{PAD_T + ph}" stroke="#333"/>']
    if y_label:
        out.append(f'<text x="12" y="{PAD_T + ph / 2:.0f}" font-size="10" transform="rotate(-90 12 '
                   f'{PAD_T + ph / 2:.0f})" text-anchor="middle">{_esc(y_label)}</text>')
    for i, (lab, v, note) in enumerate(bars):
        x = PAD_L + i * bw + bw * 0.15
        color = _COLORS[i % len(_COLORS)]
        if v is not None:
            h = ph * min(v, top) / top
            out.append(f'<rect x="{x:.1f}" y="{PAD_T + ph - h:.1f}" width="{bw * 0.7:.1f}" height="{h:.1f}" '
                       f'fill="{color}"><title>{_esc(lab)}: {v:.4f}</title></rect>')
            out.append(f'<text x="{x + bw * 0.35:.1f}" y="{PAD_T + ph - h - 4:.1f}" font-size="11" '
                       f'text-anchor="middle">{v:.3f}</text>')
        cx = x + bw * 0.35
        out.append(f'<text x="{cx:.1f}" y="{PAD_T + ph + 16}" font-size="11" text-anchor="middle">{_esc(lab)}</text>')
        out.append(f'<text x="{cx:.1f}" y="{PAD_T + ph + 30}" font-size="9" text-anchor="middle" '
                   f'fill="#555">{_esc(note)}</text>')
    out.append("</svg>")
    return "".join(out)


def html_page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A page of (heading, inner HTML) sections; the inner HTML is trusted (built here), headings are escaped."""
    body = "".join(f"<section><h2>{_esc(h)}</h2>{inner}</section>" for h, inner in sections)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_esc(title)}</title><style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "th{background:#f4f4f4}</style></head>"
        f"<body><h1>{_esc(title)}</h1>{body}</body></html>"
    )


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}"
        return _esc(v)

    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
