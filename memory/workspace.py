"""Reading a workspace folder: ``accounts.csv``, ``usage.csv``, ``outcomes.csv``, ``documents/<account_id>/*``.

Pure reading, no store: both ``ingest`` (into the ledger) and ``score --workspace`` (straight from the folder)
use it. Bad rows are reported with file and line and skipped; good rows still load.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dateutil import parser as dateparser

from extractors.errors import InputError, InputTooLargeError
from extractors.models import Account, Outcome, UsageRow

DEFAULT_MAX_ROWS = 5_000_000
MAX_FIELD_CHARS = 131_072  # csv's own field limit: a longer field rejects its row, not the file
MAX_COLUMNS = 200
DEFAULT_MAX_DOCUMENTS = 200_000
_OUTCOMES = {"churned", "renewed", "expanded", "contracted"}


@dataclass(frozen=True, slots=True)
class RowProblem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Workspace:
    root: Path
    accounts: dict[str, Account] = field(default_factory=dict)
    usage: list[UsageRow] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    documents: dict[str, list[Path]] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    vendor_domains: tuple[str, ...] = ()  # from vendor_domains.txt in the workspace root, if there


def parse_day(value: str) -> date:
    """ISO dates fast; anything dateutil understands otherwise (raises ValueError, also outside the supported
    range of extractors/dates.py, so such a row is reported and skipped)."""
    from extractors.dates import RANGE_TEXT, in_range

    value = value.strip()
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        if not value:
            raise ValueError("empty date") from None
        try:
            day = dateparser.parse(value).date()
        except OverflowError:
            raise ValueError(f"date {value!r} is out of range") from None
    if not in_range(day):
        raise ValueError(f"date {day.isoformat()} is outside the supported range {RANGE_TEXT}")
    return day


def _bounded(reader: Iterator[list[str]], path: Path, problems: list[RowProblem], max_rows: int,
             line_num: Callable[[], int]) -> Iterator[list[str]]:
    """The rows of a csv reader, with the bounds applied per row: a field over MAX_FIELD_CHARS, a row of over
    MAX_COLUMNS fields or any other malformed row is reported with its line and skipped (the reader resumes on
    the next line); rows past ``max_rows`` are reported once and not read."""
    n = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            msg = (f"a field is longer than {MAX_FIELD_CHARS} characters" if "field limit" in str(e)
                   else f"malformed CSV row ({e})")
            problems.append(RowProblem(path.name, line_num(), f"{msg}; row skipped"))
            continue
        if len(row) > MAX_COLUMNS:
            problems.append(RowProblem(path.name, line_num(), f"more than {MAX_COLUMNS} columns; row skipped"))
            continue
        n += 1
        if n > max_rows:
            problems.append(RowProblem(path.name, line_num(), f"more than {max_rows} rows: the rest of the file "
                                                              "was not read"))
            return
        yield row


def _header(reader: Iterator[list[str]], path: Path) -> list[str]:
    try:
        header = next(reader, [])
    except csv.Error as e:
        raise InputError(f"{path}: unreadable header line ({e})") from None
    if len(header) > MAX_COLUMNS:
        raise InputError(f"{path}: more than {MAX_COLUMNS} columns in the header")
    return [h.strip() for h in header]


def _rows(path: Path, required: tuple[str, ...], max_rows: int,
          problems: list[RowProblem]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row dict) for a CSV with the required columns."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        header = _header(reader, path)
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(required)}")
        for row in _bounded(reader, path, problems, max_rows, lambda: reader.line_num):
            if not row:
                continue
            yield reader.line_num, dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))


def _load_usage(path: Path, ws: Workspace, max_rows: int) -> None:
    """The hot loop of a workspace read (hundreds of thousands of rows): plain csv.reader, dates memoised."""
    accounts = ws.accounts
    problems = ws.problems
    append = ws.usage.append
    days: dict[str, date] = {}
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        header = _header(reader, path)
        try:
            ia, idate, im, iv = (header.index(c) for c in ("account_id", "date", "metric", "value"))
        except ValueError:
            raise InputError(f"{path}: missing column(s); expected account_id,date,metric,value, got {','.join(header)}") from None
        width = max(ia, idate, im, iv) + 1
        for row in _bounded(reader, path, problems, max_rows, lambda: reader.line_num):
            line = reader.line_num
            if len(row) < width:
                if row:
                    problems.append(RowProblem(path.name, line, f"expected {len(header)} columns, got {len(row)}"))
                continue
            aid = row[ia]
            if aid not in accounts:
                problems.append(RowProblem(path.name, line, f"unknown account {aid!r}"))
                continue
            raw_day = row[idate]
            day = days.get(raw_day)
            if day is None:
                try:
                    day = days[raw_day] = parse_day(raw_day)
                except (ValueError, OverflowError, TypeError):
                    problems.append(RowProblem(path.name, line, f"unparseable date {raw_day!r}"))
                    continue
            try:
                value = float(row[iv])
            except ValueError:
                problems.append(RowProblem(path.name, line, f"unparseable number {row[iv]!r}"))
                continue
            if not math.isfinite(value):
                problems.append(RowProblem(path.name, line, f"value must be finite, got {row[iv]!r}"))
                continue
            metric = row[im].strip()
            if not metric or len(metric) > 100:
                problems.append(RowProblem(path.name, line, "metric name must be 1-100 characters"))
                continue
            append(UsageRow(aid, day, metric, value))


VENDOR_FILE = "vendor_domains.txt"
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")


def read_vendor_domains(root: Path, problems: list[RowProblem] | None = None) -> tuple[str, ...]:
    """Your own email domains from ``vendor_domains.txt`` in the workspace root: domains separated by commas,
    spaces or lines, ``#`` starts a comment. A word that is not a domain is reported and skipped."""
    path = root / VENDOR_FILE
    if not path.is_file():
        return ()
    try:
        text = path.read_bytes()[:100_000].decode("utf-8", errors="replace")
    except OSError as e:
        if problems is not None:
            problems.append(RowProblem(VENDOR_FILE, 0, f"cannot read: {e.strerror or e}"))
        return ()
    out: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        for word in re.split(r"[,;\s]+", line.split("#", 1)[0]):
            d = word.strip().lower().lstrip("@")
            if not d:
                continue
            if _DOMAIN.fullmatch(d):
                out.append(d)
            elif problems is not None:
                problems.append(RowProblem(VENDOR_FILE, n, f"{word!r} is not a domain (expected e.g. acme.io)"))
    return tuple(dict.fromkeys(out))


def load_workspace(
    root: str | Path,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_documents: int = DEFAULT_MAX_DOCUMENTS,
    with_documents: bool = True,
    with_usage: bool = True,
) -> Workspace:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: workspace folder not found")
    acc_path = root / "accounts.csv"
    if not acc_path.exists():
        raise InputError(f"{root}: no accounts.csv (a workspace needs accounts.csv, usage.csv, optional outcomes.csv)")
    ws = Workspace(root=root)
    problems = ws.problems

    for line, row in _rows(acc_path, ("account_id",), max_rows, problems):
        aid = (row.get("account_id") or "").strip()
        if not aid:
            problems.append(RowProblem(acc_path.name, line, "empty account_id"))
            continue
        try:
            start = parse_day(row["start_date"]) if (row.get("start_date") or "").strip() else None
            end = parse_day(row["end_date"]) if (row.get("end_date") or "").strip() else None
        except (ValueError, OverflowError) as e:
            problems.append(RowProblem(acc_path.name, line, f"unparseable date: {e}"))
            continue
        if aid in ws.accounts:
            problems.append(RowProblem(acc_path.name, line, f"duplicate account_id {aid!r} (first one kept)"))
            continue
        extra = {k: v for k, v in row.items() if k and k not in {"account_id", "name", "start_date", "end_date", "segment"}}
        ws.accounts[aid] = Account.model_construct(
            account_id=aid,
            name=(row.get("name") or "").strip() or None,
            start_date=start,
            end_date=end,
            segment=(row.get("segment") or "").strip() or None,
            tenant="default",
            metadata=extra,
        )

    usage_path = root / "usage.csv"
    if with_usage and usage_path.exists():  # without: the caller reads usage.csv its own way (columns)
        _load_usage(usage_path, ws, max_rows)

    out_path = root / "outcomes.csv"
    if out_path.exists():
        for line, row in _rows(out_path, ("account_id", "date", "outcome"), max_rows, problems):
            aid = row["account_id"]
            if aid not in ws.accounts:
                problems.append(RowProblem(out_path.name, line, f"unknown account {aid!r}"))
                continue
            kind = (row["outcome"] or "").strip().lower()
            if kind not in _OUTCOMES:
                problems.append(RowProblem(out_path.name, line, f"unknown outcome {row['outcome']!r}; expected one of {', '.join(sorted(_OUTCOMES))}"))
                continue
            try:
                day = parse_day(row["date"])
            except (ValueError, OverflowError, TypeError):
                problems.append(RowProblem(out_path.name, line, f"unparseable date {row['date']!r}"))
                continue
            ws.outcomes.append(Outcome.model_construct(account_id=aid, date=day, outcome=kind, note=row.get("note") or None))

    ws.vendor_domains = read_vendor_domains(root, problems)

    docs_root = root / "documents"
    if with_documents and docs_root.is_dir():
        count = 0
        for acc_dir in sorted(p for p in docs_root.iterdir() if p.is_dir()):
            aid = acc_dir.name
            if aid not in ws.accounts:
                problems.append(RowProblem(f"documents/{aid}", 0, f"folder for unknown account {aid!r}"))
                continue
            files = sorted(p for p in acc_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
            count += len(files)
            if count > max_documents:
                raise InputTooLargeError(f"{docs_root}: more than {max_documents} documents")
            ws.documents[aid] = files
    return ws
