"""Domain models shared by every layer.

This module must stay light (pydantic + stdlib only): the CLI, the API, the scorer and the extractors all
import it, and start-up time matters for a CLI that is called hundreds of times by scripts.

Stored models live here; HTTP request/response models are separate (``api/schemas.py``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

Category = Literal["adoption", "relationship", "outcome", "risk"]
Polarity = Literal[-1, 0, 1]
SourceKind = Literal["email", "transcript", "notes", "chat", "ticket"]
Alignment = Literal["exact", "fuzzy"]
Tier = Literal["Healthy", "Attention", "At Risk", "Critical"]
OutcomeKind = Literal["churned", "renewed", "expanded", "contracted"]

DEFAULT_TENANT = "default"
CATEGORIES: tuple[Category, ...] = ("adoption", "relationship", "outcome", "risk")
TIERS: tuple[Tier, ...] = ("Healthy", "Attention", "At Risk", "Critical")


# ----------------------------------------------------------------------------------------- taxonomy

def _supported_moment(v: datetime | None) -> datetime | None:
    """A moment must lie in the product's date range (extractors/dates.py); its own offset is kept (the day as
    written in the source counts), but converting it to UTC must not overflow (``9999-12-31 -1200``)."""
    if v is not None:
        from extractors.dates import DateRangeError, utc

        try:
            utc(v)
        except DateRangeError as e:
            raise ValueError(str(e)) from None
    return v


Moment = Annotated[datetime | None, AfterValidator(_supported_moment)]

class SignalTypeInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    category: Category
    polarity: Polarity
    definition: str


@lru_cache(maxsize=1)
def taxonomy() -> dict[str, SignalTypeInfo]:
    """The signal taxonomy bundled with the package (a verbatim copy of the evaluation contract).

    Names never change; new types may be added.
    """
    raw = json.loads(resources.files("extractors").joinpath("taxonomy.json").read_text("utf-8"))
    return {
        name: SignalTypeInfo(name=name, **spec)  # type: ignore[arg-type]
        for name, spec in raw["signal_types"].items()
    }


def signal_type_info(name: str) -> SignalTypeInfo:
    try:
        return taxonomy()[name]
    except KeyError:
        raise ValueError(f"unknown signal type {name!r}; known types: {', '.join(sorted(taxonomy()))}") from None


def content_hash(text: str) -> str:
    """Stable id for a piece of text: a changed text is a new document version."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def document_id(text: str, account_id: str | None = None, tenant: str | None = None) -> str:
    """A document's id: the hash of its content, scoped to its account (and tenant) when it has one.

    The same text in two accounts (a vendor announcement sent to every customer) is two documents, each its
    account's own evidence; the same text in one account is one document however often it is ingested.
    """
    digest = content_hash(text)
    if tenant == DEFAULT_TENANT:
        tenant = None  # the implicit scope of a single-tenant install: same ids from the CLI and the API
    if account_id is None and tenant is None:
        return digest
    return stable_id("doc", tenant or "", account_id or "", digest)


def stable_id(*parts: object) -> str:
    """Deterministic id from parts, so re-running an extractor yields the same ids (idempotent ingest)."""
    h = hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


# ----------------------------------------------------------------------------------------- sources
class Participant(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str | None = None
    address: str | None = None  # email address or chat handle, lower-cased
    role: Literal["from", "to", "cc", "bcc", "speaker", "author", "attendee"] = "attendee"

    @property
    def domain(self) -> str | None:
        if self.address and "@" in self.address:
            return self.address.rsplit("@", 1)[1].lower()
        return None

    @property
    def label(self) -> str:
        return self.name or self.address or "unknown"


class Segment(BaseModel):
    """A span of the document's text with its own speaker/author and time.

    Transcripts have one segment per utterance; email chains one per message (the top message, then each
    quoted or forwarded one, attributed where the chain says who wrote it).
    """

    model_config = ConfigDict(frozen=True)

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    role: Literal["body", "quoted", "forwarded", "utterance", "message", "section"] = "body"
    speaker: str | None = None
    address: str | None = None
    occurred_at: Moment = None
    start_seconds: float | None = None  # offset into a recording
    end_seconds: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Segment:
        if self.end < self.start:
            raise ValueError(f"segment end {self.end} before start {self.start}")
        return self


class SourceDocument(BaseModel):
    """A parsed source. ``text`` is exactly the decoded file, so offsets index the original text.

    ``id`` defaults to :func:`document_id` (content hash scoped to the account): a changed text is a new version.
    """

    id: str = ""
    account_id: str | None = None
    kind: SourceKind
    occurred_at: Moment = None
    participants: list[Participant] = Field(default_factory=list)
    title: str | None = None
    text: str
    segments: list[Segment] = Field(default_factory=list)
    path: str | None = None  # the file it came from, as given
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text", "title", "path")
    @classmethod
    def _storable(cls, v: str | None) -> str | None:
        """NUL / lone surrogates -> U+FFFD 1:1 (extractors/text.py): every store accepts it, offsets stay."""
        from extractors.text import storable

        return None if v is None else storable(v)

    @model_validator(mode="after")
    def _id_and_segments(self) -> SourceDocument:
        if not self.id:
            self.id = document_id(self.text, self.account_id)
        n = len(self.text)
        for seg in self.segments:
            if seg.end > n:
                raise ValueError(f"segment [{seg.start}, {seg.end}) outside text of length {n}")
        return self

    def segment_at(self, offset: int) -> Segment | None:
        """The innermost segment containing ``offset`` (quoted messages nest inside bodies)."""
        best: Segment | None = None
        for seg in self.segments:
            if seg.start <= offset < seg.end and (best is None or seg.end - seg.start <= best.end - best.start):
                best = seg
        return best


# ----------------------------------------------------------------------------------------- signals
class Citation(BaseModel):
    """Verbatim evidence: ``source_text[start:end] == quote`` always holds for a stored citation."""

    model_config = ConfigDict(frozen=True)

    source_id: str
    start: int = Field(ge=0)
    end: int = Field(gt=0)
    quote: str = Field(min_length=1)
    alignment: Alignment = "exact"
    similarity: float = Field(default=100.0, ge=0, le=100)  # 100 for exact, the fuzzy ratio otherwise
    occurred_at: Moment = None
    source_path: str | None = None
    speaker: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Citation:
        if self.end <= self.start:
            raise ValueError(f"citation end {self.end} must be after start {self.start}")
        if self.end - self.start != len(self.quote):
            raise ValueError("citation quote length does not match its offsets")
        return self

    def holds_in(self, text: str) -> bool:
        return text[self.start : self.end] == self.quote


class Signal(BaseModel):
    """One observation about an account, with the words it came from."""

    id: str = ""
    account_id: str | None = None
    type: str
    category: Category | None = None  # filled from the taxonomy
    polarity: Polarity | None = None  # filled from the taxonomy
    severity: float = Field(default=0.5, ge=0, le=1)
    confidence: float = Field(default=0.5, ge=0, le=1)
    occurred_at: Moment = None
    summary: str = ""
    evidence: list[Citation] = Field(default_factory=list)
    # An LLM quote that could not be aligned to the source is kept here, never as a citation.
    unverified_quotes: list[str] = Field(default_factory=list)
    extractor: str
    extractor_version: str
    prompt_version: str | None = None
    model: str | None = None
    source_id: str | None = None
    negated: bool = False
    hedged: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        signal_type_info(v)
        return v

    @model_validator(mode="after")
    def _derive(self) -> Signal:
        info = signal_type_info(self.type)
        if self.category is None:
            self.category = info.category
        if self.polarity is None:
            self.polarity = info.polarity
        if self.source_id is None and self.evidence:
            self.source_id = self.evidence[0].source_id
        if not self.id:
            first = self.evidence[0] if self.evidence else None
            self.id = stable_id(
                self.account_id,
                self.type,
                self.source_id,
                first.start if first else None,
                first.end if first else None,
                "|".join(self.unverified_quotes),
                self.extractor,
            )
        return self

    @property
    def verified(self) -> bool:
        """Only a signal whose every claim aligned to its source may be scored."""
        return bool(self.evidence) and not self.unverified_quotes


# ----------------------------------------------------------------------------------------- accounts
class Account(BaseModel):
    account_id: str = Field(min_length=1, max_length=200)
    name: str | None = None
    start_date: date | None = None
    end_date: date | None = None  # contract end / renewal
    segment: str | None = None
    tenant: str = "default"
    metadata: dict[str, Any] = Field(default_factory=dict)


class UsagePoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str
    date: date
    metric: str = Field(min_length=1, max_length=100)
    value: float


class UsageRow(NamedTuple):
    """The same fact as :class:`UsagePoint` without validation cost, for hot paths (workspace reads of
    hundreds of thousands of rows, scoring 100k accounts). Validate at the edge, then use rows."""

    account_id: str
    date: date
    metric: str
    value: float


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str
    date: date
    outcome: OutcomeKind
    note: str | None = None


# ----------------------------------------------------------------------------------------- scores
Healthy = Literal["higher", "lower"]
TierMove = Literal["down", "up", "none"]
ChangeKind = Literal["added", "removed", "changed"]


class MetricRef(BaseModel):
    """Which usage metric, transform and window produced a contribution."""

    metric: str
    transform: str
    value: float | None
    window_start: date | None = None
    window_end: date | None = None
    subscore: float | None = None  # 0-100 after the rubric map
    unit: str | None = None  # the reading's unit (share, percent, days, count, ...), for narration
    healthy: Healthy | None = None  # which way the reading is healthy


class Contribution(BaseModel):
    """A number of points in the total, with why. Contributions add up to the total exactly."""

    key: str  # stable across dates, so two scores can be diffed item by item
    kind: Literal["baseline", "signal", "metric", "fact", "clamp", "cap", "override"]
    category: Category | None = None
    points: float
    # points = weight x the item's own subscore points: how much one subscore point of this item moves the total.
    # It changes when categories or items gain or lose data, so a diff can tell coverage from real change.
    weight: float | None = None
    reason: str
    reason_code: str
    signal_id: str | None = None
    signal_type: str | None = None
    extractor: str | None = None  # which extractor made the signal ("metadata" cites a last message, not a claim)
    evidence: list[Citation] = Field(default_factory=list)
    metric: MetricRef | None = None


class CategoryScore(BaseModel):
    category: Category
    weight: float  # as configured
    effective_weight: float  # after redistributing the weight of categories with no data
    subscore: float | None  # 0-100, None when the category has no data
    points: float  # this category's share of the total
    has_data: bool


class HealthScore(BaseModel):
    account_id: str
    as_of: date
    score: float = Field(ge=0, le=100)
    tier: Tier
    categories: list[CategoryScore] = Field(default_factory=list)
    contributions: list[Contribution] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    model_id: str
    model_version: str
    model_hash: str = ""
    inputs_digest: str = ""


class MetricChange(BaseModel):
    """A metric or fact reading before and after a change (narration)."""

    metric: str
    transform: str
    before: float | None = None
    after: float | None = None
    window_start: date | None = None
    window_end: date | None = None
    subscore_before: float | None = None  # 0-100 after the model's map
    subscore_after: float | None = None
    unit: str | None = None
    healthy: Healthy | None = None


class Driver(BaseModel):
    """One reason the score changed between two dates, with its points and evidence."""

    key: str
    kind: str  # signal, metric, fact, cap, coverage (weights shared anew as data came or went), clamp, baseline
    category: Category | None = None
    reason_code: str
    signal_type: str | None = None
    extractor: str | None = None
    change: ChangeKind
    points: float  # what this item did to the score
    before_points: float | None = None
    after_points: float | None = None
    description: str  # a sentence a CSM would write, without codes
    citations: list[Citation] = Field(default_factory=list)
    metric: MetricChange | None = None


class Recommendation(BaseModel):
    """The next action a playbook rule gives, and why."""

    model_config = ConfigDict(frozen=True)

    playbook: str
    action: str
    why: str | None = None
    matched: list[str] = Field(default_factory=list)


class Narrative(BaseModel):
    """A score change told as drivers, a tier move, a recommendation and a paragraph."""

    account_id: str
    account_name: str | None = None
    from_as_of: date
    to_as_of: date
    from_score: float
    to_score: float
    from_tier: Tier
    to_tier: Tier
    delta: float
    tier_move: TierMove
    drivers: list[Driver]
    other_points: float = 0.0  # the part of the delta below the reporting threshold
    recommendation: Recommendation | None = None
    alternatives: list[Recommendation] = Field(default_factory=list)
    text: str


def tier_for(score: float) -> Tier:
    if score >= 70:
        return "Healthy"
    if score >= 50:
        return "Attention"
    if score >= 30:
        return "At Risk"
    return "Critical"
