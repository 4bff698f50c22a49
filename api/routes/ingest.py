"""Ingest: documents (JSON or file upload), usage points and outcomes, in bounded batches.

Each call rescores the touched accounts at once (score.changed / tier.changed events follow) and answers
with the new scores, so a CS platform sees the effect of what it just sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, UploadFile
from fastapi.responses import JSONResponse

from api.deps import Reader, Service, SettingsDep, State, Writer
from api.routes.accounts import score_change
from api.schemas import (
    DocKind,
    DocumentOut,
    DocumentsIn,
    ErrorOut,
    IngestOut,
    JobOut,
    OutcomesIn,
    UpsertResult,
    UsageIn,
)
from extractors.errors import InputError, InputTooLargeError
from extractors.models import Outcome, SourceDocument, UsagePoint, document_id

router = APIRouter(
    prefix="/v1",
    tags=["ingest"],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
               413: {"model": ErrorOut}, 429: {"model": ErrorOut},
               503: {"model": ErrorOut, "description": "the ingest queue is full; retry after Retry-After seconds"}},
)

_QUEUED = {202: {"model": JobOut, "description": "with a job queue (HEALTHTRACE_BROKER_URL): the job; poll "
                                                 "GET /v1/jobs/{id}"}}


def _enqueue_texts(state: Any, tenant: str, items: list[tuple[str, str, str | None, str, object]]) -> JSONResponse:
    """Queue mode: the accounts are checked now (a typo is still a 404), the work is a job; 202 + the job."""
    from api import tasks
    from api.routes.jobs import job_out

    state.service._require_accounts(tenant, {aid for _, _, _, aid, _ in items})
    job_id = tasks.new_job_id()
    state.jobs.create(job_id, "ingest_texts", subject=f"{len(items)} document(s)", tenant=tenant)
    payload = [[text, kind, path, aid, when.isoformat() if hasattr(when, "isoformat") else when]
               for text, kind, path, aid, when in items]
    tasks.send(tasks.ingest_texts, job_id, tenant=tenant, items=payload)
    out = job_out(state.jobs.get(job_id, tenant=tenant))
    return JSONResponse(out.model_dump(mode="json"), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})

MAX_UPLOAD_FILES = 50


def _parse(text: str, kind: str, path: str | None, account_id: str, tenant: str,
           occurred_at: object = None) -> SourceDocument:
    from extractors.parsers import parse_text

    doc = parse_text(text, kind=kind, path=path, account_id=account_id)
    # ids are scoped to the tenant too: the same text in two tenants is two documents
    update: dict[str, object] = {"id": document_id(doc.text, account_id, tenant)}
    if occurred_at is not None:
        update["occurred_at"] = occurred_at
    return doc.model_copy(update=update)


def _check_batch(n: int, limit: int, what: str) -> None:
    if n > limit:
        raise InputTooLargeError(f"{n} {what} in one call; the limit is {limit}")


def _ingest_job(service: Any, tenant: str, items: list[tuple[str, str, str | None, str, object]]) -> IngestOut:
    """Parse, ingest (memory/ingest.py's service) and rescore: runs on the ingest worker, off the event loop."""
    from extractors.redact import redact

    docs = [_parse(text, kind, path, aid, tenant, when) for text, kind, path, aid, when in items]
    added, signals, rescored, failures = service.ingest_documents_report(tenant, docs)
    return IngestOut(received=len(docs), added=added, signals_added=signals, failed=len(failures),
                     failures=[redact(f) for f in failures[:100]], rescored=[score_change(r) for r in rescored])


@router.post("/documents", response_model=IngestOut, status_code=201, responses=_QUEUED)
async def ingest_documents(body: DocumentsIn, principal: Writer, service: Service, settings: SettingsDep,
                           state: State) -> Any:
    """Store documents, extract cited signals, rescore their accounts now (queued behind other writes).
    With a job queue configured: 202 and the job (extraction and rescoring run on the workers)."""
    _check_batch(len(body.documents), settings.api_max_batch, "documents")
    items = [(d.text, d.kind, d.path, d.account_id, d.occurred_at) for d in body.documents]
    if state.jobs is not None:
        return _enqueue_texts(state, principal.tenant, items)
    return await state.worker.run(_ingest_job, service, principal.tenant, items)


@router.post("/documents/upload", response_model=IngestOut, status_code=201, responses=_QUEUED)
async def upload_documents(
    principal: Writer,
    service: Service,
    settings: SettingsDep,
    state: State,
    account_id: Annotated[str, Form(min_length=1, max_length=200)],
    files: Annotated[list[UploadFile], File(description="email (.eml), transcript, notes or chat files")],
    kind: Annotated[DocKind, Form()] = "auto",
) -> Any:
    """The same as POST /v1/documents, from files (multipart/form-data); text is decoded as UTF-8."""
    _check_batch(len(files), min(MAX_UPLOAD_FILES, settings.api_max_batch), "files")
    items: list[tuple[str, str, str | None, str, object]] = []
    for f in files:
        raw = await f.read(settings.max_file_bytes + 1)
        if len(raw) > settings.max_file_bytes:
            raise InputTooLargeError(f"{f.filename}: over {settings.max_file_bytes} bytes")
        if not raw:
            raise InputError(f"{f.filename}: empty file")
        items.append((raw.decode("utf-8", errors="replace"), kind, f.filename, account_id, None))
    if state.jobs is not None:
        return _enqueue_texts(state, principal.tenant, items)
    return await state.worker.run(_ingest_job, service, principal.tenant, items)


@router.get("/documents/{source_id}", response_model=DocumentOut, tags=["documents"])
def get_document(
    source_id: Annotated[str, Path(min_length=1, max_length=64)], principal: Reader, service: Service
) -> DocumentOut:
    """A stored source; a citation's ``start``/``end`` index its ``text``."""
    d = service.document(principal.tenant, source_id)
    return DocumentOut(id=d.id, account_id=d.account_id, kind=d.kind, title=d.title, path=d.path,
                       occurred_at=d.occurred_at, text=d.text)


def _usage_job(service: Any, tenant: str, points: list[UsagePoint]) -> IngestOut:
    added, rescored = service.ingest_usage(tenant, points)
    return IngestOut(received=len(points), added=added, rescored=[score_change(r) for r in rescored])


def _usage_queued(state: Any, tenant: str, points: list[UsagePoint]) -> JSONResponse:
    """Queue mode: the rows are stored now (one bulk insert), each touched account's rescore is a job."""
    from api import tasks

    service = state.service
    service._require_accounts(tenant, {p.account_id for p in points})
    added = service.ledger.add_usage(points, tenant=tenant)
    ids = []
    for aid in dict.fromkeys(p.account_id for p in points):
        job_id = tasks.new_job_id()
        state.jobs.create(job_id, "rescore", subject=aid, tenant=tenant, account_id=aid)
        tasks.send(tasks.rescore, job_id, tenant=tenant, account_id=aid)
        ids.append(job_id)
    out = IngestOut(received=len(points), added=added, jobs=ids)
    return JSONResponse(out.model_dump(mode="json"), status_code=202)


@router.post("/usage", response_model=IngestOut, status_code=201,
             responses={202: {"model": IngestOut, "description": "with a job queue: stored, rescoring queued"}})
async def ingest_usage(body: UsageIn, principal: Writer, service: Service, settings: SettingsDep,
                       state: State) -> Any:
    """Usage points (account, date, metric, value); idempotent per (account, date, metric)."""
    _check_batch(len(body.points), settings.api_max_batch * 10, "usage points")
    points = [UsagePoint(**p.model_dump()) for p in body.points]
    if state.jobs is not None:
        return await state.worker.run(_usage_queued, state, principal.tenant, points)
    return await state.worker.run(_usage_job, service, principal.tenant, points)


@router.post("/outcomes", response_model=UpsertResult, status_code=201)
def add_outcomes(body: OutcomesIn, principal: Writer, service: Service, settings: SettingsDep) -> UpsertResult:
    """Renewals, churn, expansions: the labels calibration learns from."""
    _check_batch(len(body.outcomes), settings.api_max_batch, "outcomes")
    outcomes = [Outcome(**o.model_dump()) for o in body.outcomes]
    return UpsertResult(received=len(outcomes), changed=service.add_outcomes(principal.tenant, outcomes))
