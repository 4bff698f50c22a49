"""HTTP request and response models, separate from the stored domain models.

Requests are strict (unknown fields rejected, every list and string bounded) so a client's typo is a clear
422 rather than silently ignored data. Responses expose what a CS platform needs and nothing of the store's
internals (no tenant columns, no hashes of keys).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal


from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, StringConstraints

from extractors.dates import RANGE_TEXT, DateRangeError, parse_day, parse_moment
from extractors.models import Category, OutcomeKind, Tier

MAX_BATCH = 1000  # hard upper bound in the schema; the configured api_max_batch may be lower
MAX_TEXT_CHARS = 2_000_000
Id = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f/\\]+$")
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def _day_in(v: object) -> date:
    try:
        return parse_day(v)
    except DateRangeError as e:
        raise ValueError(str(e)) from None


def _moment_in(v: object) -> datetime:
    try:
        return parse_moment(v)
    except DateRangeError as e:
        raise ValueError(str(e)) from None


# The product's one date policy (extractors/dates.py) at the HTTP edge: strict YYYY-MM-DD days (``0`` is not
# 1970-01-01) and ISO date-times normalised to UTC, all within the supported range; anything else is a 422.
ApiDay = Annotated[date, BeforeValidator(_day_in), Field(description=f"YYYY-MM-DD, {RANGE_TEXT}")]
ApiMoment = Annotated[datetime, BeforeValidator(_moment_in),
                      Field(description=f"ISO 8601 date-time (offset normalised to UTC), {RANGE_TEXT}")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ----------------------------------------------------------------------------------------- errors
class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


# ----------------------------------------------------------------------------------------- accounts
class AccountIn(_In):
    account_id: str = Id
    name: str | None = Field(default=None, max_length=500)
    start_date: ApiDay | None = None
    end_date: ApiDay | None = None
    segment: str | None = Field(default=None, max_length=200)
    metadata: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)


class AccountsIn(_In):
    accounts: list[AccountIn] = Field(min_length=1, max_length=MAX_BATCH)


class OverrideOut(BaseModel):
    id: int | None = None
    account_id: str | None = None
    as_of: date
    tier: Tier
    score: float | None = None
    reason_code: str
    reason: str | None = Field(default=None, description="the same as reason_code (older clients)")
    note: str | None = None
    author: str | None = None
    model_ref: str | None = None
    model_score: float | None = None
    model_tier: Tier | None = None
    created_at: datetime | None = None


class AccountOut(BaseModel):
    account_id: str
    name: str | None = None
    segment: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    score: float | None = None
    tier: Tier | None = None
    as_of: date | None = None
    top_reasons: list[str] = Field(default_factory=list)
    updated_at: datetime | None = None
    override: OverrideOut | None = Field(default=None, description="the CSM's latest override, beside the score")


class AccountPage(BaseModel):
    items: list[AccountOut]
    total: int
    limit: int
    offset: int
    tiers: dict[str, int] = Field(default_factory=dict, description="accounts per tier over the whole filter")


class UpsertResult(BaseModel):
    received: int
    changed: int


# ----------------------------------------------------------------------------------------- scores
class CitationOut(BaseModel):
    source_id: str
    start: int
    end: int
    quote: str
    alignment: str = "exact"
    occurred_at: datetime | None = None
    source_path: str | None = None
    speaker: str | None = None


class MetricOut(BaseModel):
    metric: str
    transform: str
    value: float | None = None
    window_start: date | None = None
    window_end: date | None = None
    subscore: float | None = None


class ContributionOut(BaseModel):
    key: str
    kind: str
    category: Category | None = None
    points: float
    reason: str
    reason_code: str
    signal_type: str | None = None
    evidence: list[CitationOut] = Field(default_factory=list)
    metric: MetricOut | None = None


class CategoryOut(BaseModel):
    category: Category
    weight: float
    effective_weight: float
    subscore: float | None = None
    points: float
    has_data: bool


class HealthOut(BaseModel):
    account_id: str
    as_of: date
    score: float
    tier: Tier
    categories: list[CategoryOut] = Field(default_factory=list)
    contributions: list[ContributionOut] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    model_id: str
    model_version: str


class HistoryPoint(BaseModel):
    as_of: date
    score: float
    tier: Tier
    model_id: str
    model_version: str


class HistoryOut(BaseModel):
    account_id: str
    points: list[HistoryPoint]


class DriverOut(BaseModel):
    key: str
    kind: str
    category: str | None = None
    reason_code: str
    signal_type: str | None = None
    change: str
    points: float
    description: str
    citations: list[CitationOut] = Field(default_factory=list)


class ChangeOut(BaseModel):
    """One narrated change between two consecutive snapshots (or a date and now)."""

    account_id: str
    from_as_of: date
    to_as_of: date
    from_score: float
    to_score: float
    from_tier: Tier
    to_tier: Tier
    delta: float
    tier_move: str
    text: str
    drivers: list[DriverOut]
    recommended_action: dict[str, Any] | None = None
    override: OverrideOut | None = None


class ChangesOut(BaseModel):
    account_id: str
    changes: list[ChangeOut]


class RecapOut(BaseModel):
    account_id: str
    as_of: date
    audience: Literal["csm", "exec"]
    markdown: str


# ----------------------------------------------------------------------------------------- ingest
DocKind = Literal["auto", "email", "transcript", "notes", "chat"]


class DocumentIn(_In):
    account_id: str = Id
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    kind: DocKind = "auto"
    path: str | None = Field(default=None, max_length=1000, description="where the text came from (versioning key)")
    occurred_at: ApiMoment | None = Field(default=None, description="overrides the date found in the text")


class DocumentsIn(_In):
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_BATCH)


class UsagePointIn(_In):
    account_id: str = Id
    date: ApiDay
    metric: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    value: FiniteFloat


class UsageIn(_In):
    points: list[UsagePointIn] = Field(min_length=1, max_length=MAX_BATCH * 10)


class OutcomeIn(_In):
    account_id: str = Id
    date: ApiDay
    outcome: OutcomeKind
    note: str | None = Field(default=None, max_length=2000)


class OutcomesIn(_In):
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=MAX_BATCH)


OverrideReason = Literal["champion_risk", "executive_change", "budget_cut", "competitor", "product_fit",
                         "support_issues", "strategic_account", "expansion_signal", "relationship_strong",
                         "data_quality", "other"]


class OverrideIn(_In):
    """A CSM's own judgement of the account (tier and/or score, with a reason code). It is recorded beside
    the model's score at that moment, never mixed into it: calibration measures how often they agree."""

    tier: Tier | None = None
    score: float | None = Field(default=None, ge=0, le=100)
    # the CLI's --reason-code; "reason" is still accepted
    reason_code: OverrideReason = Field(validation_alias=AliasChoices("reason_code", "reason"))
    note: str | None = Field(default=None, max_length=4000)
    author: str | None = Field(default=None, max_length=200)
    as_of: ApiDay | None = Field(default=None, description="the day the judgement applies to (default today)")


class ScoreChangeOut(BaseModel):
    account_id: str
    score_before: float | None = None
    score: float
    tier_before: Tier | None = None
    tier: Tier
    as_of: date
    events: list[str] = Field(default_factory=list)


class SignalReviewIn(_In):
    """A CSM's verdict on one stored signal. A rejected signal stops counting in scores at once."""

    verdict: Literal["confirm", "reject"]
    reason: str = Field(min_length=1, max_length=2000)
    author: str | None = Field(default=None, max_length=200)


class SignalReviewOut(BaseModel):
    signal_id: str
    account_id: str | None = None
    verdict: str
    reason: str
    author: str | None = None
    created_at: datetime
    score: ScoreChangeOut | None = None  # the account rescored with the verdict applied (POST only)


class IngestOut(BaseModel):
    received: int
    added: int
    signals_added: int = 0
    failed: int = 0
    failures: list[str] = Field(default_factory=list, description="documents that could not be read: why")
    rescored: list[ScoreChangeOut] = Field(default_factory=list)
    jobs: list[str] = Field(default_factory=list, description="with a job queue: the rescoring jobs queued")


# ----------------------------------------------------------------------------------------- documents, evidence
class DocumentOut(BaseModel):
    id: str
    account_id: str | None = None
    kind: str
    title: str | None = None
    path: str | None = None
    occurred_at: datetime | None = None
    text: str


class EvidenceHit(BaseModel):
    kind: Literal["passage", "signal"]
    account_id: str | None = None
    source_path: str | None = None
    source_id: str
    start: int
    end: int
    quote: str
    score: float
    signal_type: str | None = None
    occurred_at: datetime | None = None


class EvidenceOut(BaseModel):
    query: str
    hits: list[EvidenceHit]


# ----------------------------------------------------------------------------------------- what-if
class WhatIfIn(_In):
    """Hypothetical inputs on top of the account's real ones, scored as of today; nothing is stored."""

    set: list[Annotated[str, StringConstraints(min_length=3, max_length=120)]] = Field(
        default_factory=list, max_length=50,
        description="metric changes as in the CLI: active_users=-20%, nps=30, logins=+=5")
    add_signals: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=50, description="signal types to add today (hypothetical, uncited)")


class WhatIfChange(BaseModel):
    key: str
    reason: str | None = None
    before: float
    after: float
    delta: float


class WhatIfOut(BaseModel):
    account_id: str
    changes: list[str]
    baseline: HealthOut
    scenario: HealthOut
    delta: float
    contributions: list[WhatIfChange]
    text: str


# ----------------------------------------------------------------------------------------- models
class ModelOut(BaseModel):
    name: str
    id: str
    version: str
    hash: str
    active: bool


class ModelsOut(BaseModel):
    models: list[ModelOut]


class ExtractorVersionOut(BaseModel):
    version: str
    origin: Literal["bundled", "fit", "distill"]
    sha256: str
    active: bool
    created_at: datetime | None = None
    delta_micro_f1: float | None = Field(default=None, description="out-of-fold micro-F1, new minus old, at fit")


class ExtractorVersionsOut(BaseModel):
    versions: list[ExtractorVersionOut]


# ----------------------------------------------------------------------------------------- webhooks + events
class WebhookIn(_In):
    url: HttpUrl
    secret: str | None = Field(default=None, min_length=16, max_length=200, description="generated when omitted")
    events: list[Literal["*", "score.changed", "tier.changed", "score.dropped"]] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=10
    )
    format: Literal["json", "slack"] = "json"


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    format: str
    active: bool
    created_at: datetime
    secret: str | None = Field(default=None, description="returned once, at creation")


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_kind: str
    status: str
    attempts: int
    last_status: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None


class EventOut(BaseModel):
    id: int
    event_id: str
    kind: str
    account_id: str
    occurred_at: datetime
    payload: dict[str, Any]


class EventsOut(BaseModel):
    events: list[EventOut]
    next_since_id: int


class WhoAmI(BaseModel):
    key_id: str
    tenant: str
    scope: str


# ----------------------------------------------------------------------------------------- jobs (job queue)
class JobOut(BaseModel):
    """A job of the queue (only with HEALTHTRACE_BROKER_URL): poll ``GET /v1/jobs/{id}`` until it is finished."""

    id: str
    kind: str
    status: Literal["queued", "running", "retrying", "finishing", "done", "failed", "dead"]
    attempts: int = 0
    subject: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
