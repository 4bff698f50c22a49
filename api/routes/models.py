"""Scoring models and extractor versions (list, activate) and the export of scores shaped for CRM import."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import Reader, Service, Writer
from api.schemas import ErrorOut, ExtractorVersionOut, ExtractorVersionsOut, ModelOut, ModelsOut
from api.service import top_reasons

router = APIRouter(prefix="/v1", responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut},
                                            404: {"model": ErrorOut}, 429: {"model": ErrorOut}})


@router.get("/models", response_model=ModelsOut, tags=["models"])
def list_models(principal: Reader, service: Service) -> ModelsOut:
    """Bundled models and this tenant's stored (calibrated) versions; one is active."""
    return ModelsOut(models=[ModelOut(**m) for m in service.list_models(principal.tenant)])


@router.post("/models/{name}/activate", response_model=ModelsOut, tags=["models"])
def activate_model(
    name: Annotated[str, Path(min_length=1, max_length=200, description="bundled name or stored ID@VERSION")],
    principal: Writer,
    service: Service,
) -> ModelsOut:
    """Score this tenant's accounts with another model from now on (existing snapshots stay as they were)."""
    service.activate_model(principal.tenant, name)
    return list_models(principal, service)


@router.get("/extractors", response_model=ExtractorVersionsOut, tags=["models"])
def list_extractor_versions(principal: Reader, service: Service) -> ExtractorVersionsOut:
    """This tenant's offline-extractor versions (healthtrace extractor fit/distill register them); one is active."""
    return ExtractorVersionsOut(versions=[ExtractorVersionOut(**v)
                                          for v in service.list_extractor_versions(principal.tenant)])


@router.post("/extractors/{version}/activate", response_model=ExtractorVersionsOut, tags=["models"])
def activate_extractor_version(
    version: Annotated[str, Path(min_length=1, max_length=60, description="a listed version, or bundled")],
    principal: Writer,
    service: Service,
) -> ExtractorVersionsOut:
    """Extract this tenant's documents with another version from the next ingest on (stored signals stay)."""
    service.activate_extractor_version(principal.tenant, version)
    return list_extractor_versions(principal, service)


EXPORT_COLUMNS = ("account_id", "name", "score", "tier", "as_of", "top_reason_1", "top_reason_2", "top_reason_3",
                  "updated_at", "model_id", "model_version", "override_tier", "override_score",
                  "override_reason_code", "override_as_of", "override_author")


@router.get(
    "/export/scores",
    tags=["export"],
    responses={200: {"content": {"text/csv": {}, "application/json": {}},
                     "description": "one row per account: score, tier, top reasons, updated-at"}},
)
def export_scores(
    principal: Reader,
    service: Service,
    format: Annotated[Literal["csv", "json"], Query(description="csv for spreadsheet/CRM import")] = "csv",
) -> Response:
    """One row per scored account, ready for a CRM import (Salesforce/HubSpot custom fields)."""
    from scoring.overrides import latest_by_account

    overrides = latest_by_account(service.feedback.overrides(tenant=principal.tenant))
    rows = []
    for a, s, at in service.portfolio(principal.tenant):
        ov = overrides.get(a.account_id) or {}
        extra = {"override_tier": ov.get("tier") or "", "override_score": ov.get("score") if ov.get("score") is not None
                 else "", "override_reason_code": ov.get("reason_code") or "",
                 "override_as_of": ov["as_of"].isoformat() if ov.get("as_of") else "",
                 "override_author": ov.get("author") or ""}
        if s is None:  # an account that has no score yet is listed, not left out
            rows.append({"account_id": a.account_id, "name": a.name or "", "score": "", "tier": "not scored",
                         "as_of": "", "top_reason_1": "", "top_reason_2": "", "top_reason_3": "",
                         "updated_at": "", "model_id": "", "model_version": "", **extra})
            continue
        reasons = top_reasons(s, 3) + ["", "", ""]
        rows.append({
            "account_id": a.account_id, "name": a.name or "", "score": round(s.score, 2), "tier": s.tier,
            "as_of": s.as_of.isoformat(), "top_reason_1": reasons[0], "top_reason_2": reasons[1],
            "top_reason_3": reasons[2], "updated_at": at.isoformat() if at else "", "model_id": s.model_id,
            "model_version": s.model_version, **extra,
        })
    rows.sort(key=lambda r: (r["score"] == "", r["score"] if r["score"] != "" else 0.0, r["account_id"]))
    if format == "json":
        import json

        return Response(json.dumps(rows, ensure_ascii=False), media_type="application/json")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_safe(v) for k, v in r.items()})
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="healthtrace-scores.csv"'})


def _csv_safe(v: object) -> object:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v
