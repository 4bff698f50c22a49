"""The metric vocabulary and the mapping of a customer's export names onto it (pure: no files but the bundled one).

One explicit place says what each usage metric means: ``metric_vocabulary.yaml`` (canonical name, meaning, unit,
healthy direction, export-name aliases). :func:`resolve` turns the raw metric names of a workspace or tenant,
with a few statistics of their values, into a :class:`MetricMapping`: per raw name the canonical metric, the unit
the values are in and how they are converted (a 0-1 share where a percent is expected, NPS answers 0-10, CSAT in
percent), or why the metric is not used. A mapping file (``metrics.yaml``: raw name -> canonical name, unit, or
``ignore``) wins over the aliases. Nothing is guessed silently: every conversion is a warning line, every unused
metric has its reason. Readers in :mod:`memory` read the files and apply the mapping to usage rows or columns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from extractors.errors import InputError

MAX_MAPPING_ENTRIES = 2000
IGNORE = "ignore"
# input units a mapping file may state for a metric's values
INPUT_UNITS = ("count", "users", "seats", "share", "percent", "days", "score", "rating", "ratio", "responses",
               "rating_10", "currency")


@dataclass(frozen=True, slots=True)
class Canonical:
    name: str
    meaning: str
    unit: str
    healthy: str
    aliases: tuple[str, ...]


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, Canonical]:
    """The bundled canonical metrics, by name."""
    text = resources.files("scoring").joinpath("metric_vocabulary.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    out: dict[str, Canonical] = {}
    for m in data["metrics"]:
        out[m["name"]] = Canonical(m["name"], " ".join(str(m["meaning"]).split()), m["unit"], m["healthy"],
                                   tuple(m.get("aliases") or ()))
    return out


_DECOR_PREFIX = ("pct_", "percent_", "perc_", "num_", "n_", "total_", "avg_", "mean_", "count_", "share_")
_DECOR_SUFFIX = ("_pct", "_percent", "_perc", "_percentage", "_rate", "_share", "_ratio", "_count", "_total",
                 "_num", "_avg", "_mean", "_value", "_val")


def normalise(raw: str) -> str:
    """Lower case, every run of non-alphanumerics as one '_', trimmed."""
    s = raw.strip().replace("%", " pct ").replace("#", " num ")
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)  # weeklyActiveUsers -> weekly_Active_Users
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


def stem(raw: str) -> str:
    """The name without unit decorations: pct_regenerated, regenerated_pct, regenerated_rate -> regenerated."""
    s = normalise(raw)
    changed = True
    while changed:
        changed = False
        for p in _DECOR_PREFIX:
            if s.startswith(p) and len(s) > len(p):
                s, changed = s[len(p):], True
        for x in _DECOR_SUFFIX:
            if s.endswith(x) and len(s) > len(x):
                s, changed = s[: -len(x)], True
    return s


def name_unit_hint(raw: str) -> str | None:
    """What the export name itself says about the unit: percent (pct/percent/%), share (_rate/_share/_ratio)."""
    n = normalise(raw)
    parts = set(n.split("_"))
    if parts & {"pct", "percent", "perc", "percentage"}:
        return "percent"
    if parts & {"rate", "share", "ratio", "fraction"}:
        return "share"
    return None


@lru_cache(maxsize=1)
def _alias_index() -> tuple[dict[str, tuple[str, int]], dict[str, tuple[str, int]]]:
    """normalised alias -> (canonical, rank) and stem -> (canonical, rank); rank = position in the alias list."""
    exact: dict[str, tuple[str, int]] = {}
    stems: dict[str, tuple[str, int]] = {}
    for c in vocabulary().values():
        for rank, a in enumerate((c.name, *c.aliases)):
            exact.setdefault(normalise(a), (c.name, rank))
            stems.setdefault(stem(a), (c.name, rank))
    return exact, stems


def alias_of(raw: str) -> tuple[str, int] | None:
    """(canonical, rank) the built-in aliases give a raw name, or None."""
    exact, stems = _alias_index()
    hit = exact.get(normalise(raw))
    if hit is None:
        hit = stems.get(stem(raw))
    return hit


# Fallback when no alias matches: words in the name, first rule that matches wins. Each rule is a tuple of
# alternatives; every alternative set must have one word-part (substring of a name token) present.
_KEYWORDS: tuple[tuple[tuple[tuple[str, ...], ...], str], ...] = (
    ((("ticket", "case", "incident"), ("age", "days_open", "open_days")), "ticket_age_days"),
    ((("p1", "sev1", "sev_1", "critical", "urgent", "blocker", "priority1", "highest"), ("ticket", "case", "incident",
                                                                                        "bug", "issue")),
     "open_critical_tickets"),
    ((("ticket", "case", "incident", "backlog"),), "open_tickets"),
    ((("overdue", "past_due", "pastdue", "late_payment", "unpaid", "dso", "outstanding"),), "payment_delay_days"),
    ((("invoice", "payment", "bill"), ("late", "days")), "payment_delay_days"),  # days_invoice_late, payment_days
    ((("regenerat", "retry", "retries", "regen", "rerun"),), "regeneration_rate"),
    ((("accept",),), "output_acceptance_rate"),
    ((("workflow", "task", "job", "run", "automation"), ("complet", "success", "finish")), "workflow_completion_rate"),
    ((("feature",), ("adopt", "usage", "used", "breadth")), "feature_adoption"),
    ((("nps", "promoter"),), "nps"),
    ((("csat", "satisf"),), "csat"),
    ((("arr", "revenue", "mrr"), ("change", "growth", "delta", "diff")), "arr_change_pct"),
    ((("login", "logon", "signin", "sign_in"),), "logins"),
    ((("seat", "licen"), ("used", "assign", "provision", "occupied", "consumed", "utili", "active")), "seats_used"),
    ((("seat", "licen"),), "seats_contracted"),
    # the people a customer's product is used by go by many names: technicians, agents, drivers, staff...
    ((("active", "actives"), ("user", "member", "people", "account", "seat", "technician", "tech_", "agent",
                               "engineer", "driver", "staff", "employee", "worker", "operator", "rep_", "reps",
                               "editor", "learner", "student", "clinician", "nurse", "teacher", "seller")),
     "active_users"),
    ((("wau", "mau", "dau"),), "active_users"),
)


_NOT_A_COUNT = ("minute", "duration", "hour", "second", "length", "time_spent", "cost", "price", "amount")


def keyword_of(raw: str) -> str | None:
    """The canonical metric the words of a name point to (a reported guess: 'weekly_logins_total' -> logins)."""
    n = "_" + normalise(raw) + "_"
    if any(w in n for w in _NOT_A_COUNT):  # a duration or an amount is not what any canonical metric counts
        return None
    for groups, canon in _KEYWORDS:
        if all(any(w in n for w in alts) for alts in groups):
            return canon
    return None


# ----------------------------------------------------------------------------------------- mapping file
@dataclass(frozen=True, slots=True)
class FileEntry:
    canonical: str | None  # None: ignore
    unit: str | None = None


@dataclass(frozen=True)
class MappingFile:
    """A parsed ``metrics.yaml``: raw name -> entry."""

    entries: Mapping[str, FileEntry]
    source: str = "metrics.yaml"


def parse_mapping(data: Any, source: str = "metrics.yaml") -> MappingFile:
    """``{raw: canonical | ignore | {canonical|metric: ..., unit: ...}}``, at the top or under ``metrics:``.

    Raises InputError with one line naming the problem."""
    if data is None:
        return MappingFile({}, source)
    if isinstance(data, dict) and set(data) <= {"metrics", "version"} and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping of raw metric name -> canonical name, unit or ignore")
    if len(data) > MAX_MAPPING_ENTRIES:
        raise InputError(f"{source}: {len(data)} entries; the limit is {MAX_MAPPING_ENTRIES}")
    out: dict[str, FileEntry] = {}
    for raw, v in data.items():
        name = str(raw).strip()
        if not name or len(name) > 100:
            raise InputError(f"{source}: metric name {str(raw)[:40]!r} must be 1-100 characters")
        unit = None
        if isinstance(v, dict):
            bad = set(v) - {"canonical", "metric", "unit", "ignore"}
            if bad:
                raise InputError(f"{source}: {name}: unknown key(s) {', '.join(sorted(map(str, bad)))}; "
                                 "expected canonical, unit or ignore")
            if v.get("ignore") is True:
                out[name] = FileEntry(None)
                continue
            canon = v.get("canonical", v.get("metric", name))
            unit = v.get("unit")
        elif v is None or v is False or (isinstance(v, str) and v.strip().lower() == IGNORE):
            out[name] = FileEntry(None)
            continue
        elif isinstance(v, str):
            canon = v
        else:
            raise InputError(f"{source}: {name}: expected a canonical metric name, ignore, or "
                             "{canonical: ..., unit: ...}")
        canon = str(canon).strip()
        if not canon or len(canon) > 100:
            raise InputError(f"{source}: {name}: canonical name must be 1-100 characters")
        if canon.lower() == IGNORE:
            out[name] = FileEntry(None)
            continue
        if unit is not None:
            unit = str(unit).strip().lower()
            if unit in ("%", "pct", "percentage"):
                unit = "percent"
            if unit not in INPUT_UNITS:
                raise InputError(f"{source}: {name}: unknown unit {unit!r}; expected one of {', '.join(INPUT_UNITS)}")
        out[name] = FileEntry(canon, unit)
    return MappingFile(out, source)


# ----------------------------------------------------------------------------------------- statistics
@dataclass(slots=True)
class Stats:
    """What unit detection needs of one raw metric's values."""

    n: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    integers: bool = True

    def add(self, v: float) -> None:
        self.n += 1
        if v < self.lo:
            self.lo = v
        if v > self.hi:
            self.hi = v
        if self.integers and v != int(v):
            self.integers = False


def stats_of_rows(rows: Iterable[Sequence[Any]]) -> dict[str, Stats]:
    """Per metric name: count, min, max, all integers (rows are (account, day, metric, value))."""
    out: dict[str, Stats] = {}
    for r in rows:
        s = out.get(r[2])
        if s is None:
            s = out[r[2]] = Stats()
        s.add(float(r[3]))
    return out


def stats_of_arrays(names: Sequence[str], metric: np.ndarray, value: np.ndarray) -> dict[str, Stats]:
    out: dict[str, Stats] = {}
    if not len(metric):
        return out
    k = len(names)
    cnt = np.bincount(metric, minlength=k)
    lo = np.full(k, np.inf)
    hi = np.full(k, -np.inf)
    np.minimum.at(lo, metric, value)
    np.maximum.at(hi, metric, value)
    frac = np.zeros(k, dtype=bool)
    np.logical_or.at(frac, metric, value != np.floor(value))
    for i, n in enumerate(names):
        if cnt[i]:
            out[n] = Stats(int(cnt[i]), float(lo[i]), float(hi[i]), not bool(frac[i]))
    return out


# ----------------------------------------------------------------------------------------- decisions
@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one raw metric."""

    raw: str
    canonical: str | None  # None: not used
    source: str  # "model", "mapping file", "alias", "vocabulary", ""
    unit: str | None  # the unit the raw values are read in
    convert: str = "none"  # none | scale | nps | csat_percent | csat_10 | csat_share
    factor: float = 1.0
    note: str | None = None  # a conversion or a doubt worth saying (a warning line)
    reason: str | None = None  # why it is not used
    rubrics: tuple[str, ...] = ()  # what the model reads from it
    n: int = 0
    lo: float | None = None
    hi: float | None = None
    rank: int = 0  # among raw names of one canonical: 0 counts first; a higher rank only where 0 is absent

    @property
    def used(self) -> bool:
        return self.canonical is not None


@dataclass
class MetricMapping:
    """Raw metric name -> decision, for one workspace or tenant and one model."""

    decisions: dict[str, Decision] = field(default_factory=dict)
    file_source: str | None = None

    def is_identity(self) -> bool:
        return all(d.canonical == d.raw and d.convert == "none" for d in self.decisions.values())

    def warnings(self) -> list[str]:
        """One line per conversion, doubt or unused metric (what ingest and score print once)."""
        out = []
        for d in sorted(self.decisions.values(), key=lambda x: x.raw):
            if d.canonical is None:
                out.append(f"metric {d.raw!r} not used: {d.reason}")
            elif d.note:
                out.append(f"metric {d.raw!r} read as {d.canonical}: {d.note}")
        return out

    def counted(self) -> list[str]:
        return sorted(d.raw for d in self.decisions.values() if d.used)

    def unused(self) -> list[str]:
        return sorted(d.raw for d in self.decisions.values() if not d.used)

    # ------------------------------------------------------------------ applying
    def convert_value(self, d: Decision, v: float) -> float:
        if d.convert == "scale":
            return v * d.factor
        if d.convert == "nps":
            return 100.0 if v >= 9 else (0.0 if v >= 7 else -100.0)
        if d.convert == "nps_mean":
            return _nps_from_mean(v)
        if d.convert == "csat_percent":
            return 1.0 + 4.0 * v / 100.0
        if d.convert == "csat_10":
            return 1.0 + 4.0 * v / 10.0
        if d.convert == "csat_share":
            return 1.0 + 4.0 * v
        return v

    def _shared(self) -> bool:
        """Whether two used raw names feed one canonical metric (then precedence is decided per account)."""
        return any(d.rank > 0 for d in self.decisions.values() if d.used)

    def apply_rows(self, rows: Iterable[Any], make: Any = None) -> list[Any]:
        """Usage rows with canonical names and converted values; unused metrics left out. Where one account
        reports two raw names of one canonical metric, only the preferred one (rank 0 first) counts for it.

        ``make(row, name, value)`` builds a row (default: a tuple of the same shape)."""
        out = []
        dec = self.decisions
        rows = list(rows)
        best: dict[tuple[Any, str], int] = {}
        if self._shared():
            for r in rows:
                d = dec.get(r[2])
                if d is not None and d.canonical is not None:
                    k = (r[0], d.canonical)
                    best[k] = min(best.get(k, d.rank), d.rank)
        for r in rows:
            d = dec.get(r[2])
            if d is None or d.canonical is None:
                continue
            if best and best[(r[0], d.canonical)] != d.rank:
                continue
            if d.canonical == r[2] and d.convert == "none":
                out.append(r)
                continue
            v = self.convert_value(d, float(r[3]))
            out.append(make(r, d.canonical, v) if make is not None else (r[0], r[1], d.canonical, v))
        return out

    def apply_arrays(self, names: Sequence[str], metric: np.ndarray, value: np.ndarray,
                     account: np.ndarray | None = None) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """(new names, new metric index per row, new values, kept-row mask) for column readers; ``account``
        (an integer code per row) lets two raw names of one canonical metric be decided per account."""
        new_names = sorted({d.canonical for n in names if (d := self.decisions.get(n)) is not None
                            and d.canonical is not None})
        idx = {c: i for i, c in enumerate(new_names)}
        remap = np.full(len(names) + 1, -1, dtype=np.int64)
        for i, n in enumerate(names):
            d = self.decisions.get(n)
            if d is not None and d.canonical is not None:
                remap[i] = idx[d.canonical]
        keep = remap[metric] >= 0 if len(metric) else np.zeros(0, dtype=bool)
        val = value.astype(np.float64, copy=True)
        for i, n in enumerate(names):
            d = self.decisions.get(n)
            if d is None or d.canonical is None or d.convert == "none":
                continue
            sel = metric == i
            if d.convert == "scale":
                val[sel] = val[sel] * d.factor
            elif d.convert == "nps":
                v = val[sel]
                val[sel] = np.where(v >= 9, 100.0, np.where(v >= 7, 0.0, -100.0))
            elif d.convert == "nps_mean":
                val[sel] = np.clip(NPS_PER_MEAN_POINT * (val[sel] - NPS_NEUTRAL_MEAN), -100.0, 100.0)
            elif d.convert == "csat_percent":
                val[sel] = 1.0 + 4.0 * val[sel] / 100.0
            elif d.convert == "csat_10":
                val[sel] = 1.0 + 4.0 * val[sel] / 10.0
            elif d.convert == "csat_share":
                val[sel] = 1.0 + 4.0 * val[sel]
        new_metric = remap[metric] if len(metric) else metric
        if account is not None and len(metric) and self._shared():
            ranks = np.zeros(len(names) + 1, dtype=np.int64)
            for i, n in enumerate(names):
                d = self.decisions.get(n)
                if d is not None:
                    ranks[i] = d.rank
            row_rank = ranks[metric]
            key = account.astype(np.int64) * (len(new_names) + 1) + np.where(keep, new_metric, len(new_names))
            uniq, inv = np.unique(key, return_inverse=True)
            low = np.full(len(uniq), np.iinfo(np.int64).max)
            np.minimum.at(low, inv, row_rank)
            keep = keep & (row_rank == low[inv])
        return new_names, new_metric, val, keep


# A survey's mean answer (0-10) is not its NPS; the two move together, and a mean near 7 is an NPS near 0 in
# published benchmarks. An approximation, said so in the warning; map the metric in metrics.yaml to be exact.
NPS_NEUTRAL_MEAN = 7.0
NPS_PER_MEAN_POINT = 25.0


def _nps_from_mean(v: float) -> float:
    return max(-100.0, min(100.0, NPS_PER_MEAN_POINT * (v - NPS_NEUTRAL_MEAN)))


def _fmt(v: float) -> str:
    return f"{v:g}"


def _detect(canon: Canonical, raw: str, st: Stats | None, forced: str | None
            ) -> tuple[str, str, float, str | None, str | None]:
    """(input unit, conversion, factor, note, reason-not-used) for raw values read as ``canon``."""
    hint = name_unit_hint(raw)
    lo = st.lo if st is not None and st.n else None
    hi = st.hi if st is not None and st.n else None
    rng = f"values {_fmt(lo)} to {_fmt(hi)}" if lo is not None and hi is not None else "no values yet"
    target = canon.unit
    if forced is not None:  # the mapping file says which unit the values are in
        if target == "share" and forced == "percent":
            return "percent", "scale", 0.01, f"percent 0-100 (mapping file), converted to a 0-1 share", None
        if target == "percent" and forced == "share":
            return "share", "scale", 100.0, f"0-1 share (mapping file), converted to percent", None
        if canon.name in ("nps", "nps_response") and forced == "responses":
            return "responses", "nps", 1.0, "survey answers 0-10 (mapping file): promoters +100, passives 0, " \
                                           "detractors -100", None
        if canon.name == "csat" and forced == "percent":
            return "percent", "csat_percent", 1.0, "CSAT in percent (mapping file), converted to 1-5", None
        if canon.name == "csat" and forced == "share":
            return "share", "csat_share", 1.0, "CSAT as a 0-1 share (mapping file), converted to 1-5", None
        if canon.name == "csat" and forced == "rating_10":
            return "rating_10", "csat_10", 1.0, "CSAT 0-10 (mapping file), converted to 1-5", None
        return forced, "none", 1.0, None, None
    if target == "share":
        if hi is None or (hi <= 1.0 and (lo is None or lo >= 0)):
            return "share", "none", 1.0, None, None
        if lo is not None and lo >= 0 and hi <= 100.0:
            return ("percent", "scale", 0.01, f"{rng} read as percent 0-100 and converted to a 0-1 share"
                    + ("" if hint == "percent" else " (say unit: share in metrics.yaml if that is wrong)"), None)
        return "", "none", 1.0, None, f"{rng} fit neither a 0-1 share nor a percent 0-100"
    if target == "percent":
        if canon.name == "arr_change_pct":
            if lo is not None and hi is not None and max(abs(lo), abs(hi)) > 300:
                return "", "none", 1.0, None, (f"{rng} look like amounts, not a percent change (map an ARR "
                                               "change in percent, or say ignore)")
            if hint != "percent" and lo is not None and hi is not None and max(abs(lo), abs(hi)) <= 1.0 \
                    and (lo != 0 or hi != 0):
                return ("share", "scale", 100.0, f"{rng} read as a fraction (0.1 = 10%) and converted to percent",
                        None)
            return "percent", "none", 1.0, None, None
        if hi is not None and lo is not None and lo >= 0 and hi <= 1.0 and hi > 0:
            return ("share", "scale", 100.0, f"{rng} read as a 0-1 share and converted to percent 0-100", None)
        if hi is not None and (hi > 100.0 or (lo is not None and lo < 0)):
            return "", "none", 1.0, None, f"{rng} do not fit a percent 0-100"
        return "percent", "none", 1.0, None, None
    mean_note = (f"{rng}, within 0-10 but not whole numbers: read as mean survey answers and converted to an "
                 f"approximate NPS ({NPS_PER_MEAN_POINT:g} points per point above {NPS_NEUTRAL_MEAN:g}); map it in "
                 "metrics.yaml if that is wrong")
    if canon.name == "nps":
        if lo is not None and hi is not None and lo >= 0 and hi <= 10 and st is not None and st.integers:
            return ("responses", "nps", 1.0, f"{rng}, all whole numbers 0-10: read as survey answers (promoters "
                    "+100, passives 0, detractors -100); say unit: score in metrics.yaml for a -100..100 NPS", None)
        if lo is not None and hi is not None and lo >= 0 and hi <= 10 and hi > 1:
            return "mean_responses", "nps_mean", 1.0, mean_note, None
        if lo is not None and hi is not None and (lo < -100 or hi > 100):
            return "", "none", 1.0, None, f"{rng} do not fit an NPS of -100..100"
        return "score", "none", 1.0, None, None
    if canon.name == "nps_response":
        if lo is not None and hi is not None and lo >= 0 and hi <= 10 and st is not None and not st.integers:
            return "mean_responses", "nps_mean", 1.0, mean_note, None
        if lo is not None and hi is not None and lo >= 0 and hi <= 10:
            return "responses", "nps", 1.0, None, None
        if lo is not None and hi is not None and lo >= -100 and hi <= 100:
            return "score", "none", 1.0, f"{rng} read as NPS -100..100, not as 0-10 answers", None
        return "", "none", 1.0, None, f"{rng} fit neither NPS answers 0-10 nor an NPS -100..100"
    if canon.name == "csat":
        if lo is None or hi is None or (lo >= 1 and hi <= 5):
            return "rating", "none", 1.0, None, None
        if lo >= 0 and hi <= 1.0:
            return "share", "csat_share", 1.0, f"{rng} read as a 0-1 share satisfied and converted to 1-5", None
        if lo >= 0 and hi <= 10:
            return "rating_10", "csat_10", 1.0, f"{rng} read as a 0-10 rating and converted to 1-5", None
        if lo >= 0 and hi <= 100:
            return "percent", "csat_percent", 1.0, f"{rng} read as percent satisfied and converted to 1-5", None
        return "", "none", 1.0, None, f"{rng} do not fit a CSAT rating"
    if target in ("count", "users", "seats", "days") and lo is not None and lo < 0:
        return "", "none", 1.0, None, f"{rng}: a {target} cannot be negative"
    return target, "none", 1.0, None, None


def resolve(stats: Mapping[str, Stats], *, model_metrics: Iterable[str] = (), unknown_enabled: bool = False,
            mapping: MappingFile | None = None,
            rubrics: Mapping[str, Sequence[str]] | None = None) -> MetricMapping:
    """Decide for every raw metric name what it is read as (see the module docstring).

    ``model_metrics``: names the scoring model reads (a name the model reads is used as it is unless the mapping
    file says otherwise); ``unknown_enabled``: the model reads metrics it does not name generically (then an
    unknown metric is kept as it is); ``rubrics``: canonical -> descriptions of the rubrics reading it."""
    vocab = vocabulary()
    known = set(model_metrics)
    rub = rubrics or {}
    entries = mapping.entries if mapping is not None else {}
    # first pass: a candidate per raw name, with a priority for choosing between raw names of one canonical
    cand: dict[str, tuple[str | None, str, str | None, int, str | None]] = {}
    for raw in stats:
        st = stats[raw]
        e = entries.get(raw)
        if e is not None:
            if e.canonical is None:
                cand[raw] = (None, "mapping file", None, 0, "ignored in the mapping file")
            else:
                cand[raw] = (e.canonical, "mapping file", e.unit, 0, None)
            continue
        if raw in vocab or raw in known:
            cand[raw] = (raw, "model" if raw in known else "vocabulary", None, 1, None)
            continue
        hit = alias_of(raw)
        if hit is not None:
            canon = hit[0]
            if canon in ("active_users", "seats_used") and name_unit_hint(raw) is not None and "seat_utilisation" in vocab:
                canon = "seat_utilisation"  # 'active_users_pct': a share of the seats, not a number of people
            cand[raw] = (canon, "alias", None, 10 + hit[1], None)
            continue
        if unknown_enabled:
            cand[raw] = (raw, "model", None, 1, None)
            continue
        kw = keyword_of(raw)
        if kw is not None:
            cand[raw] = (kw, "name words", None, 100, None)
            continue
        cand[raw] = (None, "", None, 0, "unknown meaning: no alias matches this name; map it in metrics.yaml "
                                         "(raw name: canonical name, or ignore)")
    # second pass: raw names of one canonical ranked by priority (an account reporting two of them counts the
    # best one; accounts of other export families keep theirs), units and conversions
    by_canon: dict[str, list[str]] = {}
    for raw, (canon, _src, _u, prio, _r) in cand.items():
        if canon is not None:
            by_canon.setdefault(canon, []).append(raw)
    rank_of: dict[str, int] = {}
    best: dict[str, str] = {}
    for canon, raws in by_canon.items():
        raws.sort(key=lambda r: (cand[r][3], r))
        best[canon] = raws[0]
        rank_of.update({r: i for i, r in enumerate(raws)})
    out = MetricMapping(file_source=mapping.source if mapping is not None else None)
    for raw in sorted(cand):
        canon, src, forced, _prio, reason = cand[raw]
        st = stats.get(raw)
        lo, hi, n = (st.lo, st.hi, st.n) if st is not None and st.n else (None, None, 0)
        if canon is None:
            out.decisions[raw] = Decision(raw, None, src, None, reason=reason, n=n, lo=lo, hi=hi)
            continue
        rank = rank_of.get(raw, 0)
        cobj = vocab.get(canon)
        if cobj is None:  # a name only the model knows: used as it is, in its own unit
            if canon not in known and not unknown_enabled:
                out.decisions[raw] = Decision(raw, None, src, None, n=n, lo=lo, hi=hi,
                                              reason=f"mapped to {canon!r}, which is neither a known metric nor "
                                                     "read by the model")
                continue
            out.decisions[raw] = Decision(raw, canon, src, forced, rubrics=tuple(rub.get(canon, ())), n=n,
                                          lo=lo, hi=hi)
            continue
        unit, conv, factor, note, why_not = _detect(cobj, raw, st, forced)
        if why_not is not None:
            out.decisions[raw] = Decision(raw, None, src, None, reason=why_not, n=n, lo=lo, hi=hi)
            continue
        if canon == "nps" and conv in ("nps", "nps_mean") and "nps_response" in rub and "nps_response" not in best:
            canon = "nps_response"  # answers 0-10: their mean over a window is the NPS, not the last answer
        reads = tuple(rub.get(canon, ()))
        if not reads and known and canon not in known:
            out.decisions[raw] = Decision(raw, None, src, None, n=n, lo=lo, hi=hi,
                                          reason=f"means {canon} ({cobj.meaning}), but the model has no rubric "
                                                 "for it")
            continue
        if src == "name words":
            note = (f"matched by the words of its name (map it in metrics.yaml if that is wrong)"
                    + (f"; {note}" if note else ""))
        if rank:
            note = (f"counts only for accounts that do not also report {best[canon]!r}"
                    + (f"; {note}" if note else ""))
        out.decisions[raw] = Decision(raw, canon, src, unit, conv, factor, note, None, reads, n, lo, hi, rank)
    return out


def model_rubrics(model: Any) -> dict[str, list[str]]:
    """canonical metric -> the model's readings of it, in words ("active users trend over 60 days")."""
    out: dict[str, list[str]] = {}
    for m in model.metrics:
        text = f"{m.description or m.metric} ({m.transform}, {m.window_days} d, {m.category}, weight {m.weight:g})"
        out.setdefault(m.metric, []).append(text)
        if m.denominator:
            out.setdefault(m.denominator, []).append(f"denominator of {m.description or m.metric}")
    return out


def resolve_for_model(stats: Mapping[str, Stats], model: Any, mapping: MappingFile | None = None) -> MetricMapping:
    um = getattr(model, "unknown_metrics", None)
    names = set(model.known_metrics)
    for prof in getattr(model, "profiles", {}) or {}:
        try:
            names |= set(model.for_segment(prof).known_metrics)
        except Exception:  # noqa: BLE001 - a bad profile is reported when it is scored
            pass
    return resolve(stats, model_metrics=names, unknown_enabled=bool(um is not None and um.enabled
                                                                   and um.max_metrics > 0),
                   mapping=mapping, rubrics=model_rubrics(model))


def check_lines(mm: MetricMapping) -> list[str]:
    """``healthtrace metrics check``: raw -> canonical, unit, rubric, or "not used, and why"."""
    vocab = vocabulary()
    lines = []
    for d in sorted(mm.decisions.values(), key=lambda x: x.raw):
        span = f" [{d.n} values, {_fmt(d.lo)}..{_fmt(d.hi)}]" if d.lo is not None and d.hi is not None else ""
        if d.canonical is None:
            lines.append(f"{d.raw}{span} -> not used: {d.reason}")
            continue
        c = vocab.get(d.canonical)
        unit = c.unit if c is not None else (d.unit or "as given")
        how = f"read in {d.unit}" if d.unit and c is not None and d.unit != c.unit else ""
        conv = f"; {d.note}" if d.note else ""
        reads = "; ".join(d.rubrics) if d.rubrics else "no rubric in the model"
        meaning = f" ({c.meaning}, healthy {c.healthy})" if c is not None else ""
        via = f" via {d.source}" if d.source else ""
        lines.append(f"{d.raw}{span} -> {d.canonical}{via}, unit {unit}{' ' + how if how else ''}{meaning}; "
                     f"rubric: {reads}{conv}")
    return lines


__all__ = [
    "Canonical", "Decision", "FileEntry", "MappingFile", "MetricMapping", "Stats", "alias_of", "check_lines",
    "model_rubrics", "name_unit_hint", "normalise", "parse_mapping", "resolve", "resolve_for_model", "stats_of_arrays",
    "stats_of_rows", "stem", "vocabulary",
]
