"""``GET /v1/jobs/{id}``: where a queued job stands (only with a job queue: HEALTHTRACE_BROKER_URL)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Reader, State
from api.schemas import ErrorOut, JobOut
from extractors.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["jobs"], responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}})


def job_out(row: dict) -> JobOut:  # type: ignore[type-arg]
    return JobOut(id=row["id"], kind=row["kind"], status=row["status"], attempts=row.get("attempts") or 0,
                  subject=row.get("subject"), created_at=row.get("created_at"), started_at=row.get("started_at"),
                  finished_at=row.get("finished_at"), result=row.get("result") or {}, error=row.get("error"))


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: Annotated[str, Path(min_length=1, max_length=64)], principal: Reader, state: State) -> JobOut:
    """A job of this tenant: queued, running, retrying, done, failed (bad input) or dead (retries ran out)."""
    if state.jobs is None:
        raise NotFoundError("no job queue is configured on this server (HEALTHTRACE_BROKER_URL)")
    return job_out(state.jobs.get(job_id, tenant=principal.tenant))
