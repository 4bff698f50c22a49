"""Metric mapping files: a workspace's ``metrics.yaml`` and the tenant copy kept beside the ledger.

I/O only; what a mapping means is :mod:`scoring.metrics`. A workspace's file applies when the workspace is
scored or ingested; ``ingest --workspace`` keeps a copy per tenant (``<home>/metrics/<tenant>.yaml``) so that
scoring the stored memory later maps the names the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

from extractors.errors import InputError
from scoring.metrics import MappingFile, parse_mapping
from scoring.model import read_yaml_file

MAX_MAPPING_BYTES = 256 * 1024
NAMES = ("metrics.yaml", "metrics.yml")


def read_mapping_file(path: str | Path) -> MappingFile:
    data = read_yaml_file(path, what="metric mapping file", limit=MAX_MAPPING_BYTES, error=InputError)
    return parse_mapping(data, source=Path(path).name)


def workspace_mapping_path(root: str | Path) -> Path | None:
    for n in NAMES:
        p = Path(root) / n
        if p.is_file():
            return p
    return None


def workspace_mapping(root: str | Path) -> MappingFile | None:
    p = workspace_mapping_path(root)
    return read_mapping_file(p) if p is not None else None


def tenant_mapping_path(home: str | Path, tenant: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", tenant)[:100] or "default"
    return Path(home) / "metrics" / f"{safe}.yaml"


def tenant_mapping(home: str | Path, tenant: str) -> MappingFile | None:
    p = tenant_mapping_path(home, tenant)
    return read_mapping_file(p) if p.is_file() else None


def save_tenant_mapping(home: str | Path, tenant: str, source: str | Path) -> Path:
    """Keep a validated copy of a workspace's mapping file for the tenant (replaces the previous one)."""
    read_mapping_file(source)  # a bad file is refused before anything is replaced
    dest = tenant_mapping_path(home, tenant)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(Path(source).read_bytes())
    tmp.replace(dest)
    return dest
