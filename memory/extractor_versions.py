"""Extractor versions of a tenant, like scoring model versions: fitted artefacts of the offline extractor's
sentence classifier, kept under ``HEALTHTRACE_HOME/extractors/<version>/`` (``sentence_model.npz`` + ``.json``,
the files ``extractors/refit.py`` writes) and recorded in the ledger's ``extractor_versions`` table.

Why a registry: a refit on a tenant's own feedback (``extractor fit``) or on an LLM's verified claims
(``extractor distill``) must be comparable, reversible and visible on every signal. Registering never
overwrites: a version's folder is written once (a temporary folder renamed into place) and its row is
append-only; activating only moves the one ``active`` flag. The artefact bundled in the package is the
implicit default (the pseudo-version ``bundled``) when no stored version is active.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from extractors.errors import ConfigError, InputError, NotFoundError
from memory.ledger import DEFAULT_TENANT, ExtractorVersionRow, Ledger, _utcnow

BUNDLED = "bundled"
ORIGINS = ("bundled", "fit", "distill")
ARTEFACT_FILES = ("sentence_model.npz", "sentence_model.json")
TRAINING_FILE = "training_extra.jsonl"  # the records added to the corpus for this fit (feedback, distilled)
MAX_REPORT_BYTES = 2_000_000
MAX_ARTEFACT_BYTES = 64 * 1024 * 1024


def _bundled_sha() -> str:
    from importlib import resources

    meta = json.loads(resources.files("extractors").joinpath(ARTEFACT_FILES[1]).read_text("utf-8"))
    return str(meta["sha256"])


def check_artefact(directory: Path) -> dict[str, Any]:
    """The artefact's metadata after checking that both files exist and the npz matches its recorded hash."""
    npz, meta_path = (directory / f for f in ARTEFACT_FILES)
    try:
        if npz.stat().st_size > MAX_ARTEFACT_BYTES:
            raise InputError(f"{npz} is larger than {MAX_ARTEFACT_BYTES} bytes")
        data = npz.read_bytes()
        meta = json.loads(meta_path.read_text("utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"extractor artefact incomplete in {directory}: {e.filename} is missing") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"extractor artefact in {directory} cannot be read: {e}") from None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise ConfigError(f"{npz} does not match the sha256 in {meta_path.name}")
    return meta


class ExtractorVersions:
    """The registry on an open :class:`Ledger` (its migrations create the table) and a home folder."""

    def __init__(self, ledger: Ledger, home: str | Path) -> None:
        self.ledger = ledger
        self.home = Path(home)
        self.root = self.home / "extractors"

    # ------------------------------------------------------------------ writing
    def register(self, artefact_dir: Path, *, origin: str, report: dict[str, Any] | None = None,
                 training: list[dict[str, Any]] | None = None, tenant: str = DEFAULT_TENANT,
                 now: datetime | None = None) -> dict[str, Any]:
        """Copy a fitted artefact into home under a new version name and record it (inactive)."""
        if origin not in ORIGINS or origin == BUNDLED:
            raise InputError(f"origin must be fit or distill, got {origin!r}")
        meta = check_artefact(artefact_dir)
        sha = str(meta["sha256"])
        body = json.dumps(report or {}, sort_keys=True, default=str)
        if len(body) > MAX_REPORT_BYTES:
            raise InputError(f"extractor report is {len(body)} bytes; the limit is {MAX_REPORT_BYTES}")
        stamp = (now or _utcnow()).strftime("%Y%m%dT%H%M%S")
        t = ExtractorVersionRow.__table__
        with self.ledger.read() as conn:
            taken = set(conn.scalars(select(t.c.version).where(t.c.version.like(f"{origin}-{stamp}-{sha[:8]}%"))))
        version = f"{origin}-{stamp}-{sha[:8]}"
        n = 1
        while version in taken or (self.root / version).exists():  # the same artefact twice in one second
            n += 1
            version = f"{origin}-{stamp}-{sha[:8]}-{n}"
        dest = self.root / version
        self.root.mkdir(parents=True, exist_ok=True)
        # a new folder, written whole and renamed into place: never an existing one
        tmp = Path(tempfile.mkdtemp(prefix=".new-", dir=self.root))
        try:
            for name in ARTEFACT_FILES:
                shutil.copyfile(artefact_dir / name, tmp / name)
            if training:
                with (tmp / TRAINING_FILE).open("w", encoding="utf-8") as f:
                    for rec in training:
                        f.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
            check_artefact(tmp)
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        row = {"tenant": tenant, "version": version, "origin": origin, "sha256": sha,
               "path": str(dest.relative_to(self.home)), "report": json.loads(body), "active": False,
               "created_at": now or _utcnow()}
        with self.ledger.write() as conn:
            conn.execute(t.insert().values(**row))
        return row

    def activate(self, version: str, *, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
        """Make one version the tenant's active extractor (``bundled``: the package's artefact); the others
        become inactive in the same transaction. A version whose files are missing or altered is refused."""
        t = ExtractorVersionRow.__table__
        if version == BUNDLED:
            row = self.get(BUNDLED, tenant=tenant, implicit=False)
            if row is None:
                with self.ledger.write() as conn:
                    conn.execute(t.insert().values(tenant=tenant, version=BUNDLED, origin=BUNDLED,
                                                   sha256=_bundled_sha(), path=None, report=None, active=False,
                                                   created_at=_utcnow()))
        else:
            row = self.get(version, tenant=tenant, implicit=False)
            if row is None:
                raise NotFoundError(f"no extractor version {version!r}; `healthtrace extractor versions` lists them")
            directory = self.directory(row)
            assert directory is not None
            if check_artefact(directory)["sha256"] != row["sha256"]:
                raise ConfigError(f"{directory} holds another artefact than version {version} recorded")
        with self.ledger.write() as conn:
            conn.execute(update(t).where(t.c.tenant == tenant, t.c.active.is_(True)).values(active=False))
            conn.execute(update(t).where(t.c.tenant == tenant, t.c.version == version).values(active=True))
        found = self.get(version, tenant=tenant)
        assert found is not None
        return found

    # ------------------------------------------------------------------ reading
    def versions(self, *, tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        """Every version of the tenant, oldest first, the bundled one first (implicit when never stored)."""
        t = ExtractorVersionRow.__table__
        with self.ledger.read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(t).where(t.c.tenant == tenant).order_by(t.c.created_at, t.c.version))]
        if not any(r["version"] == BUNDLED for r in rows):
            rows.insert(0, {"tenant": tenant, "version": BUNDLED, "origin": BUNDLED, "sha256": _bundled_sha(),
                            "path": None, "report": None, "active": False, "created_at": None})
        if not any(r["active"] for r in rows):
            next(r for r in rows if r["version"] == BUNDLED)["active"] = True
        return rows

    def get(self, version: str, *, tenant: str = DEFAULT_TENANT, implicit: bool = True) -> dict[str, Any] | None:
        if implicit:
            return next((r for r in self.versions(tenant=tenant) if r["version"] == version), None)
        t = ExtractorVersionRow.__table__
        with self.ledger.read() as conn:
            r = conn.execute(select(t).where(t.c.tenant == tenant, t.c.version == version)).first()
        return None if r is None else dict(r._mapping)

    def active(self, *, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
        """The active version's row (the bundled pseudo-version when none is stored as active)."""
        return next(r for r in self.versions(tenant=tenant) if r["active"])

    def directory(self, row: dict[str, Any]) -> Path | None:
        """Where a version's files live (None: the package's bundled artefact)."""
        return None if not row.get("path") else self.home / row["path"]

    def active_dir(self, *, tenant: str = DEFAULT_TENANT) -> Path | None:
        return self.directory(self.active(tenant=tenant))

    def training_records(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The records a version added to the corpus (empty for the bundled one)."""
        d = self.directory(row)
        if d is None or not (d / TRAINING_FILE).exists():
            return []
        with (d / TRAINING_FILE).open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
