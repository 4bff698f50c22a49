"""LLM extractor ("llm") and rules-first hybrid ("hybrid") over any OpenAI-compatible endpoint.

The chat model is injected (a langchain ``BaseChatModel``, normally ``ChatOpenAI``); :func:`chat_model` builds one
from plain values (:class:`LLMClientConfig`) that the edge (CLI, API) reads from settings and passes in: this
module imports nothing from ``api``. What the model says is a claim, not evidence: it returns a type and a verbatim
quote per signal, never offsets, and every quote is aligned to the text by :mod:`extractors.grounding`. A quote
that does not align becomes an *unverified* signal (stored and visible, never scored).

Cost: documents are cut into sentence-aligned chunks; small chunks of several documents share one request (the
fixed prompt is paid once per request, not per e-mail); identical texts are sent once; every answered piece is
cached by (text hash, prompt version, model). Robustness: retries with exponential backoff and jitter on 429,
5xx, timeouts and connection errors (honouring Retry-After), repair of fenced or truncated JSON, one re-ask on an
unusable answer, and per-document failures reported instead of lost (:meth:`LLMExtractor.extract_many`).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from .base import get_extractor, register_extractor
from .chunking import Chunk, chunk_text
from .errors import ConfigError, ExtractionError, HealthtraceError, LLMError
from .grounding import DEFAULT_MIN_SIMILARITY, align, citation_for_span
from .llm_cache import Claim, LLMCache
from .models import Signal, SourceDocument, content_hash, taxonomy
from .tokens import count_tokens

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

log = logging.getLogger(__name__)

NAME = "llm"
HYBRID_NAME = "hybrid"
VERSION = "1.0.0"
DEFAULT_PROMPT_VERSION = "v1"
TOOL_NAME = "report_signals"
MAX_QUOTE_CHARS = 1_000
MAX_CLAIMS_PER_PIECE = 50
MAX_DOCUMENTS_PER_RUN = 100_000
MAX_RETRY_AFTER_S = 300.0
EST_COMPLETION_TOKENS_PER_PIECE = 40  # dry-run guess: answers are short lists of quotes
MESSAGE_OVERHEAD_TOKENS = 4  # per chat message, as OpenAI counts them


# ----------------------------------------------------------------------------------------- config & results
@dataclass(frozen=True)
class LLMConfig:
    """Plain values (read from settings at the edge)."""

    model: str = "gpt-4o-mini"
    structured_method: str = "json_schema"  # json_schema | function_calling | json_mode
    max_retries: int = 5
    concurrency: int = 4
    chunk_tokens: int = 1500  # longest piece of one document
    context_tokens: int = 64
    batch_tokens: int = 6000  # document text per request: pieces of several documents are packed together
    batch_pieces: int = 32  # attribution is by alignment, so more pieces per request cost no accuracy
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    prompt_version: str = DEFAULT_PROMPT_VERSION
    min_similarity: float = DEFAULT_MIN_SIMILARITY
    price_prompt_per_1k: float = 0.00015
    price_completion_per_1k: float = 0.0006

    def __post_init__(self) -> None:
        if self.structured_method not in ("json_schema", "function_calling", "json_mode"):
            raise ConfigError(
                f"unknown structured output method {self.structured_method!r}; "
                "use json_schema, function_calling or json_mode"
            )
        if self.chunk_tokens < 50 or self.batch_pieces < 1 or self.concurrency < 1 or self.max_retries < 0:
            raise ConfigError("LLM settings out of range (chunk_tokens >= 50, batch_pieces >= 1, concurrency >= 1)")


@dataclass(frozen=True)
class LLMClientConfig:
    """How to reach the endpoint (plain values; the edge reads them from settings and passes them in)."""

    base_url: str | None = None
    api_key: str | None = None
    model: str = "gpt-4o-mini"
    connect_timeout_s: float = 5.0  # a dead or unroutable endpoint is known after this long, not after a read timeout
    read_timeout_s: float = 60.0  # a slow answer (a long completion) may take this long
    max_tokens: int | None = None  # cap on each answer's length (a small local model can ramble to its context end)

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ConfigError("LLM timeouts must be > 0 seconds")


@dataclass(frozen=True)
class LLMSetup:
    """Everything the ``llm``/``hybrid`` registry factories need, built at the edge (CLI, API) from settings."""

    client: LLMClientConfig = field(default_factory=LLMClientConfig)
    config: LLMConfig = field(default_factory=LLMConfig)
    cache_path: Path | None = None  # SQLite answer cache; None: no cache
    hybrid_window_tokens: int = 200


@dataclass
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    estimated: bool = False  # True when a count came from tiktoken rather than the endpoint's usage

    def add(self, other: TokenUsage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls
        self.estimated = self.estimated or other.estimated

    def cost(self, config: LLMConfig) -> float:
        return (
            self.prompt_tokens / 1000 * config.price_prompt_per_1k
            + self.completion_tokens / 1000 * config.price_completion_per_1k
        )


@dataclass
class DocResult:
    doc: SourceDocument
    signals: list[Signal]
    usage: TokenUsage  # this document's share of the requests made for it in this run (0 when cached)
    pieces: int = 0
    cached_pieces: int = 0
    unverified: int = 0


@dataclass
class DocFailure:
    """A document whose extraction failed: the caller keeps it pending and retries on a later run."""

    doc: SourceDocument
    error: str


@dataclass
class RunStats:
    """Counters for one :meth:`LLMExtractor.extract_many` run (and totals across runs in ``totals``)."""

    documents: int = 0
    failed: int = 0
    pieces: int = 0
    cached_pieces: int = 0
    duplicate_pieces: int = 0
    source_tokens: int = 0  # tokens of the pieces sent (context included), i.e. the text part of prompts
    usage: TokenUsage = field(default_factory=TokenUsage)
    verified: int = 0
    unverified: int = 0
    rejected: int = 0  # items of an answer that were off-schema (unknown type, empty quote, unattributable)
    relabelled: int = 0  # claims whose quote aligned to another piece than the one the model named
    retries: int = 0
    reasks: int = 0
    fallbacks: int = 0  # requests whose answer was unusable: their pieces were asked again one document per request
    fallback_requests: int = 0
    skipped_chunks: int = 0  # hybrid: chunks not sent to the LLM
    stopped: str | None = None  # why the run stopped early (a dead endpoint); every document then is a failure

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "usage"}
        d.update(prompt_tokens=self.usage.prompt_tokens, completion_tokens=self.usage.completion_tokens,
                 calls=self.usage.calls, usage_estimated=self.usage.estimated)
        return d


@dataclass(frozen=True)
class VerifiedClaim:
    """A claim of the model whose quote aligned to the document: offsets are ours, ``text[start:end] == quote``."""

    type: str
    quote: str
    start: int
    end: int
    confidence: float


@dataclass
class DocClaims:
    """What the LLM said about one document and survived verification, with what produced it (distillation's
    training examples: only verified claims, stamped with prompt and model version)."""

    doc: SourceDocument
    claims: list[VerifiedClaim]
    prompt_version: str
    model: str
    extractor_version: str
    unverified: int = 0  # claims dropped because their quote is not in the document


@dataclass(frozen=True)
class CostEstimate:
    """What a run would send, computed without calling the endpoint."""

    documents: int
    pieces: int
    cached_pieces: int
    calls: int
    source_tokens: int
    prompt_tokens: int
    completion_tokens_est: int
    cost_usd: float
    model: str
    skipped_chunks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ----------------------------------------------------------------------------------------- output schema
class _ClaimIn(BaseModel):
    """One item of the model's answer, validated leniently (a bad item is dropped, not the whole answer)."""

    piece: str | None = None
    type: str
    quote: str = Field(min_length=1, max_length=MAX_QUOTE_CHARS)
    confidence: float = 0.5

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        v = re.sub(r"[\s-]+", "_", v.strip().lower())  # "Churn Intent", "churn-intent": weak models vary the case
        if v not in taxonomy():
            raise ValueError(f"unknown type {v!r}")
        return v

    @field_validator("confidence", mode="before")
    @classmethod
    def _clamp(cls, v: Any) -> float:
        try:
            return min(1.0, max(0.0, float(v)))
        except (TypeError, ValueError):
            return 0.5

    @field_validator("piece", mode="before")
    @classmethod
    def _piece_str(cls, v: Any) -> str | None:
        return None if v is None else str(v).strip()


@lru_cache(maxsize=1)
def answer_model() -> type[BaseModel]:
    """The answer as a pydantic model: a list of (piece, type, quote, confidence) and nothing else.

    Types are a closed enum from the taxonomy; there is no offset field (offsets come from grounding only).
    """
    type_name = Literal[tuple(sorted(taxonomy()))]  # type: ignore[valid-type]
    forbid = ConfigDict(extra="forbid")
    item = create_model("SignalClaim", __config__=forbid, piece=(str, ...), type=(type_name, ...),
                        quote=(str, ...), confidence=(float, ...))
    return create_model("SignalsAnswer", __config__=forbid, signals=(list[item], ...))  # type: ignore[valid-type]


def output_schema() -> dict[str, Any]:
    """JSON schema of :func:`answer_model`, compacted for the wire: refs inlined, titles dropped (tokens)."""
    schema = answer_model().model_json_schema()
    defs = schema.pop("$defs", {})

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return clean(defs[node["$ref"].rsplit("/", 1)[1]])
            return {k: clean(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    return clean(schema)


class BadAnswer(ValueError):
    """The model's reply could not be read as the output schema."""


def _decode_json(raw: str) -> Any:
    """JSON from a reply: plain, fenced (```json), with prose around it, or truncated (closed for it)."""
    from langchain_core.utils.json import parse_json_markdown

    s = raw.strip()
    if not s:
        raise BadAnswer("the reply was empty")
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        pass
    try:
        return parse_json_markdown(s)
    except (ValueError, json.JSONDecodeError):
        pass
    brace = s.find("{")
    if brace > 0:
        try:
            return parse_json_markdown(s[brace:])
        except (ValueError, json.JSONDecodeError):
            pass
    raise BadAnswer("the reply is not valid JSON")


def parse_claims(payload: str | dict[str, Any] | list[Any]) -> tuple[list[tuple[str | None, Claim]], int]:
    """(piece label, claim) items of a reply, plus the number of items rejected as off-schema.

    The label is what the model *said*; it is only a hint (see :meth:`LLMExtractor._attribute`).
    """
    data: Any = _decode_json(payload) if isinstance(payload, str) else payload
    if isinstance(data, dict):
        items = data.get("signals")
        if items is None and len(data) == 1:
            items = next(iter(data.values()))
    else:
        items = data
    if not isinstance(items, list):
        raise BadAnswer('the reply has no "signals" list')
    out: list[tuple[str | None, Claim]] = []
    rejected = 0
    for item in items[: MAX_CLAIMS_PER_PIECE * 64]:  # bound a runaway answer
        if not isinstance(item, dict):
            rejected += 1
            continue
        try:
            c = _ClaimIn.model_validate(item)
        except ValidationError:
            rejected += 1
            continue
        out.append((c.piece, Claim(c.type, c.quote, c.confidence)))
    rejected += max(0, len(items) - MAX_CLAIMS_PER_PIECE * 64)
    return out, rejected


def parse_answer(payload: str | dict[str, Any] | list[Any], piece_ids: Sequence[str]) -> tuple[dict[str, list[Claim]], int]:
    """Claims per piece id *by the model's labels* (no alignment), plus the number of items rejected."""
    items, rejected = parse_claims(payload)
    known = set(piece_ids)
    only = piece_ids[0] if len(piece_ids) == 1 else None
    out: dict[str, list[Claim]] = {pid: [] for pid in piece_ids}
    for label, c in items:
        pid = label if label in known else only
        if pid is None or len(out[pid]) >= MAX_CLAIMS_PER_PIECE:
            rejected += 1
            continue
        out[pid].append(c)
    return out, rejected


class EndpointDown(LLMError):
    """The endpoint could not be connected to on the run's first request: the run stops, nothing is lost."""


def _connect_failure(e: BaseException) -> bool:
    """True when the request never reached the server (refused, unresolvable, connect timeout)."""
    import httpx

    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError)):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


# ----------------------------------------------------------------------------------------- errors & retries
def _status(e: BaseException) -> int | None:
    code = getattr(e, "status_code", None)
    if isinstance(code, int):
        return code
    resp = getattr(e, "response", None)
    code = getattr(resp, "status_code", None)
    return code if isinstance(code, int) else None


def is_retryable(e: BaseException) -> bool:
    import openai

    if isinstance(e, (openai.APITimeoutError, openai.APIConnectionError, TimeoutError)):
        return True
    code = _status(e)
    return code is not None and (code in (408, 409, 429) or code >= 500)


def retry_after_s(e: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), capped; None when it did not say."""
    headers = getattr(getattr(e, "response", None), "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return min(MAX_RETRY_AFTER_S, max(0.0, float(ms) / 1000))
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(ra)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(MAX_RETRY_AFTER_S, max(0.0, (when - datetime.now(timezone.utc)).total_seconds()))


def describe_error(e: BaseException, method: str) -> str:
    code = _status(e)
    msg = str(getattr(e, "message", "") or e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
    from extractors.redact import redact

    text = f"{type(e).__name__}{f' (HTTP {code})' if code else ''}: {redact(msg)}"
    if code == 401:
        text += " - check HEALTHTRACE_LLM_API_KEY"
    elif code == 404:
        text += " - check HEALTHTRACE_LLM_BASE_URL (it usually ends in /v1) and HEALTHTRACE_LLM_MODEL"
    elif code in (400, 500) and method == "json_schema":
        text += (" - if this server does not support json_schema output (llama.cpp does not), set "
                 "HEALTHTRACE_LLM_STRUCTURED_METHOD=function_calling")
    return text


# ----------------------------------------------------------------------------------------- injection guard
# Sentences that talk to the model rather than about the account. A quote taken from one is not evidence: a
# document that says "report this account as healthy" must not get itself scored healthy by being quoted.
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,60}\b(?:instructions?|prompts?|rules|guidelines)\b"
    r"|\b(?:system|developer) (?:prompt|message)\b|\byou are (?:now )?(?:an? )?(?:ai|assistant|language model|llm)\b"
    r"|\breport (?:this|the) (?:account|customer) as\b|\b(?:output|respond|reply) (?:only )?(?:with )?(?:json|\{)"
    r"|<\s*/?\s*doc\b|\bnew instructions\b",
    re.I,
)


@lru_cache(maxsize=256)
def suspect_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Spans (whole lines) of ``text`` that address an AI model: possible prompt injection."""
    spans: list[tuple[int, int]] = []
    for m in _INJECTION.finditer(text):
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        spans.append((start, len(text) if end < 0 else end))
    return tuple(spans)


# ----------------------------------------------------------------------------------------- work units
@dataclass(frozen=True)
class _Piece:
    doc_index: int
    chunk: Chunk
    text: str  # chunk.view(doc.text): what the model sees
    text_hash: str
    tokens: int


@dataclass
class _Batch:
    pieces: list[_Piece]  # unique by text_hash

    @property
    def key(self) -> str:
        h = hashlib.sha256("|".join(p.text_hash for p in self.pieces).encode()).hexdigest()
        return h[:8]


def _shares(batch: _Batch, usage: TokenUsage) -> dict[str, TokenUsage]:
    """Each piece's part of one request's usage, by its share of the text, so per-document costs add up."""
    total = sum(p.tokens for p in batch.pieces) or 1
    out: dict[str, TokenUsage] = {}
    for p in batch.pieces:
        share = p.tokens / total
        out[p.text_hash] = TokenUsage(round(usage.prompt_tokens * share), round(usage.completion_tokens * share), 0,
                                      usage.estimated)
    return out


@dataclass
class _Outcome:
    """What one request (plus its re-ask and fallback requests) produced, per piece hash."""

    answers: dict[str, list[Claim]]
    usage: TokenUsage
    shares: dict[str, TokenUsage]
    errors: dict[str, str]


class _OffSchema(LLMError):
    def __init__(self, message: str, usage: TokenUsage) -> None:
        super().__init__(message)
        self.usage = usage


def _add_shares(into: dict[str, TokenUsage], more: dict[str, TokenUsage]) -> None:
    for h, u in more.items():
        into.setdefault(h, TokenUsage()).add(u)


@dataclass
class _Plan:
    pieces: list[list[_Piece]]  # per document
    cached: dict[str, tuple[Claim, ...]]
    batches: list[_Batch]
    duplicates: int
    skipped_chunks: int


# ----------------------------------------------------------------------------------------- the extractor
def _summary(signal_type: str, quote: str) -> str:
    """Deterministic one-liner; the model is never asked to write prose we would have to verify."""
    snippet = " ".join(quote.split())
    if len(snippet) > 90:
        snippet = snippet[:87] + "..."
    return f"{signal_type.replace('_', ' ').capitalize()}: '{snippet}'"


class LLMExtractor:
    """Grounded signal extraction by an injected chat model."""

    name = NAME
    version = VERSION

    def __init__(
        self,
        llm: BaseChatModel,
        *,
        config: LLMConfig | None = None,
        cache: LLMCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
        endpoint: str | None = None,
    ) -> None:
        from prompts.loader import load_prompt

        self.llm = llm
        # named in the one-line error of a dead endpoint (ChatOpenAI knows its own base URL)
        self.endpoint = endpoint or getattr(llm, "openai_api_base", None) or "the LLM endpoint"
        self._alive = False  # set once the endpoint answered anything (even an HTTP error) in this run
        self.config = config or LLMConfig()
        self.cache = cache
        self.signal_extractor = NAME  # what LLM-found signals record as their extractor, in every mode
        self._sleep = sleep
        self.prompt = load_prompt("extract", self.config.prompt_version)
        self.prompt_id = self.prompt.id
        self._lock = threading.Lock()
        self.last_run = RunStats()
        self.totals = RunStats()

    # -- prompt rendering ----------------------------------------------------------------------
    @cached_property
    def system_text(self) -> str:
        types = "\n".join(f"{name}: {info.definition}" for name, info in sorted(taxonomy().items()))
        examples = []
        for i, ex in enumerate(self.prompt.examples, 1):
            pid = f"E{i}"
            answer = {"signals": [{"piece": pid, **s} for s in ex["signals"]]}
            examples.append(f'<doc id="{pid}" key="ex">\n{ex["text"]}\n</doc key="ex">\n'
                            + json.dumps(answer, ensure_ascii=False, separators=(",", ":")))
        return self.prompt.render("system", types=types, examples="\n".join(examples))

    @cached_property
    def cache_version(self) -> str:
        """Prompt version plus a digest of the rendered prompt and schema: a taxonomy change invalidates answers."""
        rendered = self.system_text + json.dumps(output_schema(), sort_keys=True)
        return f"{self.prompt_id}#{hashlib.sha256(rendered.encode()).hexdigest()[:12]}"

    @cached_property
    def schema_tokens(self) -> int:
        """Tokens the response schema (or tool definition) adds to every request."""
        if self.config.structured_method == "json_mode":
            return 0
        return count_tokens(json.dumps(output_schema(), separators=(",", ":")), self.config.model)

    def user_text(self, batch: _Batch) -> str:
        key = batch.key
        docs = "\n".join(f'<doc id="P{i}" key="{key}">\n{p.text}\n</doc key="{key}">'
                         for i, p in enumerate(batch.pieces, 1))
        return self.prompt.render("user", documents=docs)

    def messages(self, batch: _Batch, reask_error: str | None = None) -> list[BaseMessage]:
        from langchain_core.messages import HumanMessage, SystemMessage

        msgs: list[BaseMessage] = [SystemMessage(self.system_text), HumanMessage(self.user_text(batch))]
        if reask_error is not None:
            msgs.append(HumanMessage(self.prompt.render("reask", error=reask_error)))
        return msgs

    def prompt_tokens_of(self, messages: Sequence[BaseMessage]) -> int:
        n = sum(count_tokens(str(m.content), self.config.model) + MESSAGE_OVERHEAD_TOKENS for m in messages)
        return n + self.schema_tokens

    @cached_property
    def _runnable(self) -> Any:
        method = self.config.structured_method
        if method == "json_schema":
            fmt = {"type": "json_schema", "json_schema": {"name": TOOL_NAME, "strict": True, "schema": output_schema()}}
            return self.llm.bind(response_format=fmt)
        if method == "function_calling":
            tool = {"type": "function", "function": {"name": TOOL_NAME, "description": "Report the signals found.",
                                                     "parameters": output_schema()}}
            return self.llm.bind_tools([tool], tool_choice=TOOL_NAME)  # type: ignore[attr-defined]
        return self.llm.bind(response_format={"type": "json_object"})

    # -- planning ------------------------------------------------------------------------------
    def chunks_for(self, doc: SourceDocument) -> tuple[list[Chunk], int]:
        """Chunks to send for ``doc`` and how many were skipped (none here; the hybrid overrides this)."""
        return self._chunk(doc, self.config.chunk_tokens), 0

    def _chunk(self, doc: SourceDocument, budget: int) -> list[Chunk]:
        """Chunks of the document's content: a JSON export (stored as it is, one thread of a shared file
        possibly) sends only the span of its own messages, not the whole file."""
        model = self.config.model
        start, end = 0, len(doc.text)
        if doc.metadata.get("format") == "json" and doc.segments:
            start, end = min(s.start for s in doc.segments), max(s.end for s in doc.segments)
        return chunk_text(doc.text, budget, lambda s: count_tokens(s, model), context_tokens=self.config.context_tokens,
                          start=start, end=end)

    def _plan(self, docs: Sequence[SourceDocument]) -> _Plan:
        if len(docs) > MAX_DOCUMENTS_PER_RUN:
            raise ExtractionError(f"{len(docs)} documents in one run; the limit is {MAX_DOCUMENTS_PER_RUN}")
        per_doc: list[list[_Piece]] = []
        cached: dict[str, tuple[Claim, ...]] = {}
        pending: dict[str, _Piece] = {}
        duplicates = skipped = 0
        for i, doc in enumerate(docs):
            chunks, s = self.chunks_for(doc)
            skipped += s
            pieces = []
            for c in chunks:
                view = c.view(doc.text)
                if not view.strip():
                    continue
                p = _Piece(i, c, view, content_hash(view), count_tokens(view, self.config.model))
                pieces.append(p)
                if p.text_hash in cached or p.text_hash in pending:
                    duplicates += 1
                    continue
                hit = self.cache.get(p.text_hash, self.cache_version, self.config.model) if self.cache else None
                if hit is not None:
                    cached[p.text_hash] = hit.claims
                else:
                    pending[p.text_hash] = p
            per_doc.append(pieces)
        return _Plan(per_doc, cached, self._pack(list(pending.values())), duplicates, skipped)

    def _pack(self, pending: list[_Piece]) -> list[_Batch]:
        """First-fit decreasing: the fixed prompt is paid per request, so fill every request to the budget."""
        budget = max(self.config.batch_tokens, self.config.chunk_tokens + self.config.context_tokens)
        bins: list[tuple[list[_Piece], list[int]]] = []  # (pieces, [tokens used])
        for p in sorted(pending, key=lambda p: -p.tokens):
            for pieces, used in bins:
                if used[0] + p.tokens <= budget and len(pieces) < self.config.batch_pieces:
                    pieces.append(p)
                    used[0] += p.tokens
                    break
            else:
                bins.append(([p], [p.tokens]))
        # keep each document's pieces in reading order inside a request (easier for the model to follow)
        return [_Batch(sorted(pieces, key=lambda p: (p.doc_index, p.chunk.start))) for pieces, _ in bins]

    def estimate(self, docs: Sequence[SourceDocument]) -> CostEstimate:
        """Tokens and price of extracting ``docs`` now (cached pieces are free), with no endpoint call."""
        plan = self._plan(docs)
        prompt = sum(self.prompt_tokens_of(self.messages(b)) for b in plan.batches)
        source = sum(p.tokens for b in plan.batches for p in b.pieces)
        n_pending = sum(len(b.pieces) for b in plan.batches)
        completion = n_pending * EST_COMPLETION_TOKENS_PER_PIECE
        usage = TokenUsage(prompt, completion, len(plan.batches), estimated=True)
        return CostEstimate(
            documents=len(docs),
            pieces=sum(len(p) for p in plan.pieces),
            cached_pieces=len(plan.cached),
            calls=len(plan.batches),
            source_tokens=source,
            prompt_tokens=prompt,
            completion_tokens_est=completion,
            cost_usd=round(usage.cost(self.config), 6),
            model=self.config.model,
            skipped_chunks=plan.skipped_chunks,
        )

    # -- calling -------------------------------------------------------------------------------
    def _invoke(self, messages: list[BaseMessage], stats: RunStats) -> Any:
        """One request with retries: backoff with jitter, Retry-After honoured, non-retryable errors at once."""
        import openai

        attempts = self.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                msg = self._runnable.invoke(messages)
                self._alive = True
                return msg
            except (openai.OpenAIError, TimeoutError, ConnectionError) as e:
                if _status(e) is not None:
                    self._alive = True
                elif not self._alive and _connect_failure(e):
                    # dead on the first request: retrying (and every other request) would only add minutes
                    raise EndpointDown(f"LLM endpoint {self.endpoint} is unreachable "
                                       f"({describe_error(e, self.config.structured_method)}); run stopped") from e
                if not is_retryable(e) or attempt == attempts:
                    tried = f" after {attempt} attempts" if attempt > 1 else ""
                    raise LLMError(f"LLM request failed{tried}: {describe_error(e, self.config.structured_method)}") from e
                wait = retry_after_s(e)
                if wait is None:
                    cap = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
                    wait = random.uniform(cap / 2, cap)  # jitter keeps parallel workers from retrying in step
                with self._lock:
                    stats.retries += 1
                log.info("LLM request failed (%s); retry %d in %.2fs", type(e).__name__, attempt, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")

    @staticmethod
    def _payload(msg: Any) -> str | dict[str, Any]:
        """The answer inside a reply: tool-call arguments, or the message text."""
        calls = getattr(msg, "tool_calls", None) or []
        if calls:
            return dict(calls[0].get("args") or {})
        invalid = getattr(msg, "invalid_tool_calls", None) or []
        if invalid:
            return str(invalid[0].get("args") or "")
        content = getattr(msg, "content", "")
        if isinstance(content, list):
            content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
        return str(content or "")

    def _usage(self, msg: Any, messages: Sequence[BaseMessage], payload: str | dict[str, Any]) -> TokenUsage:
        meta = getattr(msg, "usage_metadata", None)
        if meta and meta.get("input_tokens"):
            return TokenUsage(int(meta["input_tokens"]), int(meta.get("output_tokens") or 0), 1)
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return TokenUsage(self.prompt_tokens_of(messages), count_tokens(text, self.config.model), 1, estimated=True)

    def _ask(self, batch: _Batch, stats: RunStats) -> tuple[list[tuple[str | None, Claim]], int, TokenUsage]:
        """One request and at most one re-ask: the (label, claim) items and the count of off-schema items."""
        usage = TokenUsage()
        reask: str | None = None  # one re-ask, quoting what was wrong with the first answer
        while True:
            messages = self.messages(batch, reask_error=reask)
            msg = self._invoke(messages, stats)
            payload = self._payload(msg)
            usage.add(self._usage(msg, messages, payload))
            try:
                items, rejected = parse_claims(payload)
                return items, rejected, usage
            except BadAnswer as e:
                if reask is not None:
                    raise _OffSchema(f"the LLM answered off-schema twice ({e}); model {self.config.model}",
                                     usage) from None
                reask = str(e)
                with self._lock:
                    stats.reasks += 1

    def _attribute(
        self, batch: _Batch, docs: Sequence[SourceDocument], items: Sequence[tuple[str | None, Claim]]
    ) -> tuple[dict[str, list[Claim]], int, int, int]:
        """Claims per piece hash, decided by where each quote aligns, not by the model's piece label.

        Each quote is aligned to every piece of the request, then to the pieces' documents; the best alignment
        wins (a piece's own text before its document, exact before fuzzy), then a piece that does not already
        hold the same claim, then the labelled piece, then reading order. A quote that aligns nowhere stays an
        unverified claim of the labelled piece (or of the only document of the request); without a usable
        label in a request of several documents it cannot be attributed and is dropped.
        Returns (answers, aligned, relabelled, unattributed).
        """
        ids = {f"P{i}": p for i, p in enumerate(batch.pieces, 1)}
        out: dict[str, list[Claim]] = {p.text_hash: [] for p in batch.pieces}
        single = batch.pieces[0] if len({p.doc_index for p in batch.pieces}) == 1 else None
        sim = self.config.min_similarity
        aligned = relabelled = 0
        cap = MAX_CLAIMS_PER_PIECE * len(batch.pieces)
        unattributed = max(0, len(items) - cap)  # bounds the alignment work a runaway answer can cause
        for label, c in items[:cap]:
            hinted = ids.get(label.upper()) if label else None
            best: tuple[tuple[Any, ...], _Piece] | None = None
            in_doc: dict[int, Any] = {}  # document-level alignment, once per document and claim
            exact = {id(p) for p in batch.pieces if c.quote.strip() and c.quote.strip() in p.text}
            for order, p in enumerate(batch.pieces):
                if exact and id(p) not in exact:
                    continue  # an exact hit elsewhere beats any fuzzy one: skip the costly search
                tier, a = 0, align(p.text, c.quote, min_similarity=sim)
                if a is None:
                    if p.doc_index not in in_doc:
                        in_doc[p.doc_index] = align(docs[p.doc_index].text, c.quote, hint=p.chunk.start,
                                                    min_similarity=sim)
                    tier, a = 1, in_doc[p.doc_index]
                if a is None:
                    continue
                held = any(k.type == c.type and k.quote == c.quote for k in out[p.text_hash])
                rank = (tier, -a.similarity, held, p is not hinted, order)
                if best is None or rank < best[0]:
                    best = (rank, p)
            if best is not None:
                target = best[1]
                aligned += 1
                relabelled += target is not hinted
            elif hinted is not None or single is not None:
                target = hinted or single  # type: ignore[assignment]
            else:
                unattributed += 1
                continue
            if len(out[target.text_hash]) >= MAX_CLAIMS_PER_PIECE:
                unattributed += 1
                continue
            out[target.text_hash].append(c)
        return out, aligned, relabelled, unattributed

    def _run_batch(self, batch: _Batch, docs: Sequence[SourceDocument], stats: RunStats) -> _Outcome:
        """Ask once for the batch; when the answer is unusable, ask again one document per request."""
        multi = len({p.doc_index for p in batch.pieces}) > 1
        junk = False
        try:
            items, rejected, usage = self._ask(batch, stats)
        except _OffSchema as e:
            if not multi:
                raise
            items, rejected, usage, junk = [], 0, e.usage, True
        answers, aligned, relabelled, unattributed = self._attribute(batch, docs, items)
        shares = _shares(batch, usage)
        errors: dict[str, str] = {}
        if multi and (junk or ((items or rejected) and aligned == 0)):
            # nothing in the answer is in any of the documents (or it is not the schema): the model lost track of
            # the packing; one document per request takes that away
            with self._lock:
                stats.fallbacks += 1
            answers, rejected, relabelled, unattributed = {}, 0, 0, 0
            groups: dict[int, list[_Piece]] = {}
            for p in batch.pieces:
                groups.setdefault(p.doc_index, []).append(p)
            for group in groups.values():
                sub = _Batch(group)
                with self._lock:
                    stats.fallback_requests += 1
                try:
                    sub_items, sub_rejected, sub_usage = self._ask(sub, stats)
                except EndpointDown:
                    raise
                except HealthtraceError as e:
                    usage.add(getattr(e, "usage", TokenUsage()))
                    errors.update({p.text_hash: str(e) for p in group})
                    continue
                got, _, moved, lost = self._attribute(sub, docs, sub_items)
                answers.update(got)
                rejected += sub_rejected
                relabelled += moved
                unattributed += lost
                usage.add(sub_usage)
                _add_shares(shares, _shares(sub, sub_usage))
        with self._lock:
            stats.rejected += rejected + unattributed
            stats.relabelled += relabelled
        if self.cache is not None:
            for h, claims in answers.items():
                part = shares.get(h, TokenUsage())
                self.cache.put(h, self.cache_version, self.config.model, claims, part.prompt_tokens,
                               part.completion_tokens)
        return _Outcome(answers, usage, shares, errors)

    # -- grounding -----------------------------------------------------------------------------
    def ground(self, doc: SourceDocument, piece: _Piece | Chunk, claims: Iterable[Claim]) -> list[Signal]:
        """Signals for the claims made about one chunk: aligned to the chunk, then to the whole document."""
        chunk = piece.chunk if isinstance(piece, _Piece) else piece
        view = chunk.view(doc.text)
        out: list[Signal] = []
        for c in claims:
            start = end = -1
            a = align(view, c.quote, min_similarity=self.config.min_similarity)
            if a is not None:
                start, end = chunk.context_start + a.start, chunk.context_start + a.end
            else:
                a = align(doc.text, c.quote, hint=chunk.start, min_similarity=self.config.min_similarity)
                if a is not None:
                    start, end = a.start, a.end
            common = dict(account_id=doc.account_id, type=c.type, confidence=c.confidence,
                          extractor=self.signal_extractor,
                          extractor_version=self.version, prompt_version=self.prompt_id, model=self.config.model,
                          source_id=doc.id, summary=_summary(c.type, c.quote))
            if a is not None and any(s < end and start < e for s, e in suspect_spans(doc.text)):
                a = None  # quoting an instruction to the model is not evidence about the account
            if a is None:
                out.append(Signal(**common, unverified_quotes=[c.quote[:MAX_QUOTE_CHARS]],
                                  occurred_at=doc.occurred_at))
                continue
            cit = citation_for_span(doc, start, end, alignment=a.alignment, similarity=a.similarity)
            out.append(Signal(**common, evidence=[cit], occurred_at=cit.occurred_at))
        return out

    # -- public API ----------------------------------------------------------------------------
    def extract(self, doc: SourceDocument) -> list[Signal]:
        results, failures = self.extract_many([doc])
        if failures:
            raise LLMError(f"{doc.path or doc.id}: {failures[0].error}")
        return results[0].signals

    def extract_many(self, docs: Sequence[SourceDocument]) -> tuple[list[DocResult], list[DocFailure]]:
        """Every document ends up in exactly one of the two lists; failed ones can simply be retried later."""
        stats = RunStats(documents=len(docs))
        plan = self._plan(docs)
        stats.duplicate_pieces = plan.duplicates
        stats.skipped_chunks = plan.skipped_chunks
        stats.cached_pieces = len(plan.cached)
        answers: dict[str, list[Claim] | tuple[Claim, ...]] = dict(plan.cached)
        errors: dict[str, str] = {}
        usage_by_hash: dict[str, TokenUsage] = {}
        self._alive = False

        def work(batch: _Batch) -> None:
            if stats.stopped is not None:
                with self._lock:
                    errors.update({p.text_hash: stats.stopped for p in batch.pieces})
                return
            try:
                outcome = self._run_batch(batch, docs, stats)
            except EndpointDown as e:
                with self._lock:
                    stats.stopped = stats.stopped or str(e)
                    errors.update({p.text_hash: stats.stopped for p in batch.pieces})
                return
            except HealthtraceError as e:
                with self._lock:
                    for p in batch.pieces:
                        errors[p.text_hash] = str(e)
                return
            except Exception as e:  # a surprise from the client stack must not lose the other documents
                log.exception("unexpected error in an LLM request")
                with self._lock:
                    for p in batch.pieces:
                        errors[p.text_hash] = f"unexpected {type(e).__name__}: {e}"
                return
            with self._lock:
                stats.usage.add(outcome.usage)
                stats.source_tokens += sum(p.tokens for p in batch.pieces if p.text_hash not in outcome.errors)
                answers.update(outcome.answers)
                errors.update(outcome.errors)
                usage_by_hash.update(outcome.shares)

        if plan.batches:
            work(plan.batches[0])  # alone: a dead endpoint is known from one request, before any other is sent
            rest = plan.batches[1:]
            if rest:
                with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(rest))) as pool:
                    list(pool.map(work, rest))

        results: list[DocResult] = []
        failures: list[DocFailure] = []
        for doc, pieces in zip(docs, plan.pieces):
            failed = [errors[p.text_hash] for p in pieces if p.text_hash in errors]
            if failed:
                n = len(failed)
                if stats.stopped is not None and failed[0] == stats.stopped:
                    failures.append(DocFailure(doc, stats.stopped))  # pending: the next run asks again
                    continue
                failures.append(DocFailure(doc, f"{n} of {len(pieces)} chunks failed: {failed[0]}"))
                continue
            signals: list[Signal] = []
            usage = TokenUsage()
            seen: set[str] = set()
            for p in pieces:
                signals.extend(self.ground(doc, p, answers.get(p.text_hash, ())))
                if p.text_hash not in seen and p.text_hash in usage_by_hash:
                    usage.add(usage_by_hash[p.text_hash])
                seen.add(p.text_hash)
            signals = dedupe(signals)
            n_unverified = sum(1 for s in signals if not s.verified)
            stats.verified += len(signals) - n_unverified
            stats.unverified += n_unverified
            stats.pieces += len(pieces)
            results.append(DocResult(doc, signals, usage, len(pieces),
                                     sum(1 for p in pieces if p.text_hash in plan.cached), n_unverified))
        stats.failed = len(failures)
        self.last_run = stats
        _accumulate(self.totals, stats)
        return results, failures

    def verified_claims(self, docs: Sequence[SourceDocument]) -> tuple[list[DocClaims], list[DocFailure]]:
        """Per document, the LLM's verified claims (prompt and model version attached); failures as in
        :meth:`extract_many`. Claims of the hybrid's offline rules are not included: only what the LLM said."""
        results, failures = self.extract_many(docs)
        out = []
        for r in results:
            claims = [VerifiedClaim(s.type, c.quote, c.start, c.end, s.confidence)
                      for s in r.signals if s.extractor == self.signal_extractor and s.verified for c in s.evidence[:1]]
            out.append(DocClaims(r.doc, claims, self.prompt_id, self.config.model, self.version, r.unverified))
        return out, failures


def _accumulate(total: RunStats, run: RunStats) -> None:
    for k, v in run.__dict__.items():
        if isinstance(v, int) and not isinstance(v, bool):
            setattr(total, k, getattr(total, k) + v)
    total.usage.add(run.usage)


def dedupe(signals: Iterable[Signal]) -> list[Signal]:
    """One signal per type and overlapping span (the highest confidence wins); unverified ones by quote."""
    kept: list[Signal] = []
    for s in sorted(signals, key=lambda s: -s.confidence):
        if not s.evidence:
            if any(k.type == s.type and not k.evidence and k.unverified_quotes == s.unverified_quotes for k in kept):
                continue
            kept.append(s)
            continue
        c = s.evidence[0]
        if any(k.type == s.type and k.evidence and k.evidence[0].start < c.end and c.start < k.evidence[0].end
               for k in kept):
            continue
        kept.append(s)
    kept.sort(key=lambda s: (s.evidence[0].start if s.evidence else 1 << 60, s.type))
    return kept


# ----------------------------------------------------------------------------------------- hybrid
# Words that make a chunk worth an LLM call even when no rule fired: feelings, risk and outcome vocabulary.
DEFAULT_CUES = (
    r"cancel\w*|terminat\w*|not (?:be )?renew\w*|churn\w*|switch\w* to|competitor\w*|alternative (?:vendor|supplier)s?"
    r"|too expensive|price increase|budget cuts?|discount|overcharg\w*|invoice\w*|refund\w*|overdue|unpaid"
    r"|delay(?:ed|s)?|postpon\w*|slipp\w*|behind schedule|missed|deadline|blocked|blocker|stuck|outage|broken"
    r"|bugs?|not working|doesn't work|escalat\w*|urgent\w*|asap|critical|complain\w*|frustrat\w*|disappoint\w*"
    r"|concern\w*|worr\w*|upset|angry|unhappy|unacceptable|thank\w*|appreciat\w*|great job|excellent|pleased"
    r"|congratulat\w*|impress\w*|went live|go-live|launched|milestone|completed|expan\w*|upgrad\w*|more seats"
    r"|resign\w*|left the company|leaving the company|no longer with|reorgani[sz]\w*|not heard back|no response"
    r"|haven't heard|procurement|legal review|security review|missing feature|doesn't support|workaround"
)


class HybridExtractor(LLMExtractor):
    """Rules first; only chunks with a rules signal or a cue word go to the LLM; signals merged and deduped."""

    def __init__(
        self,
        llm: BaseChatModel,
        *,
        config: LLMConfig | None = None,
        cache: LLMCache | None = None,
        rules: Any = None,
        cues: str | None = DEFAULT_CUES,
        window_tokens: int = 200,
        min_rule_confidence: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(llm, config=config, cache=cache, sleep=sleep, endpoint=endpoint)
        self.name = HYBRID_NAME
        self.rules = rules if rules is not None else get_extractor("rules")
        self.cues = re.compile(rf"\b(?:{cues})\b", re.I) if cues else None
        self.window_tokens = window_tokens
        self.min_rule_confidence = min_rule_confidence
        self._rules_out: dict[str, list[Signal]] = {}

    def _rules(self, doc: SourceDocument) -> list[Signal]:
        key = f"{doc.id}:{doc.account_id}"
        if key not in self._rules_out:
            self._rules_out[key] = self.rules.extract(doc)
        return self._rules_out[key]

    def chunks_for(self, doc: SourceDocument) -> tuple[list[Chunk], int]:
        windows = self._chunk(doc, min(self.window_tokens, self.config.chunk_tokens))
        spans = [(c.start, c.end) for s in self._rules(doc) if s.confidence >= self.min_rule_confidence
                 for c in s.evidence]
        runs: list[list[Chunk]] = []
        previous_kept = False
        for w in windows:
            hit = any(s < w.end and w.start < e for s, e in spans)
            if not hit and self.cues is not None:
                hit = self.cues.search(doc.text, w.start, w.end) is not None
            if hit:
                # neighbouring candidates travel as one piece: one context, one pair of tags
                if previous_kept and sum(c.tokens for c in runs[-1]) + w.tokens <= self.config.chunk_tokens:
                    runs[-1].append(w)
                else:
                    runs.append([w])
            previous_kept = hit
        keep = [Chunk(i, r[0].start, r[-1].end, r[0].context_start, sum(c.tokens for c in r))
                for i, r in enumerate(runs)]
        return keep, len(windows) - sum(len(r) for r in runs)

    def extract_many(self, docs: Sequence[SourceDocument]) -> tuple[list[DocResult], list[DocFailure]]:
        self._rules_out = {}
        try:
            results, failures = super().extract_many(docs)
            for r in results:
                r.signals = dedupe(self._rules(r.doc) + r.signals)
            return results, failures
        finally:
            self._rules_out = {}


# ----------------------------------------------------------------------------------------- polish
_QUOTED = re.compile(r"\"([^\"]{1,2000})\"|\u201c([^\u201d]{1,2000})\u201d")


def polish(text: str, citations: list[str], llm: BaseChatModel, *, prompt_version: str = "v1") -> str:
    """Let the LLM rephrase ``text``; keep the deterministic text unless every cited quote survives verbatim
    and no new quotation appears."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from prompts.loader import load_prompt

    if not text.strip():
        return text
    p = load_prompt("polish", prompt_version)
    try:
        msg = llm.invoke([SystemMessage(p.render("system")), HumanMessage(p.render("user", text=text))])
    except Exception as e:  # polish is optional: any endpoint failure falls back to the deterministic text
        log.warning("narration polish failed, keeping the deterministic text: %s", e)
        return text
    out = LLMExtractor._payload(msg)
    if not isinstance(out, str):
        return text
    out = out.strip()
    if not out or len(out) > 3 * len(text) + 200:
        return text
    if any(q not in out for q in citations):
        return text
    for m in _QUOTED.finditer(out):
        q = m.group(1) or m.group(2)
        if q not in text and not any(q in c for c in citations):
            return text
    return out


# ----------------------------------------------------------------------------------------- wiring
def chat_model(client: LLMClientConfig) -> BaseChatModel:
    """ChatOpenAI for ``client``; retries are ours (per chunk), so the client's are off.

    The connect timeout is separate from the read timeout: a dead endpoint is known in seconds, while a slow
    completion still has the whole read timeout.
    """
    if not client.base_url:
        raise ConfigError(
            "HEALTHTRACE_LLM_BASE_URL is not set: point it at an OpenAI-compatible endpoint "
            "(e.g. https://api.openai.com/v1) and set HEALTHTRACE_LLM_API_KEY to use the llm or hybrid extractor"
        )
    import httpx
    from langchain_openai import ChatOpenAI

    from extractors.redact import register_secret

    key = client.api_key or "not-needed"
    register_secret(key)  # an endpoint that echoes the key must not get it printed or stored
    return ChatOpenAI(
        base_url=client.base_url,
        api_key=key,  # type: ignore[arg-type]
        model=client.model,
        timeout=httpx.Timeout(client.read_timeout_s, connect=client.connect_timeout_s),
        max_retries=0,
        temperature=0,
        max_tokens=client.max_tokens,  # type: ignore[call-arg]
    )


def build(setup: LLMSetup, *, hybrid: bool = False, llm: BaseChatModel | None = None, **options: Any) -> LLMExtractor:
    """An ``LLMExtractor`` (or ``HybridExtractor``) from plain values; ``llm`` overrides the client built from
    ``setup.client`` (tests, dry runs)."""
    model = llm if llm is not None else chat_model(setup.client)
    options.setdefault("config", setup.config)
    options.setdefault("cache", LLMCache(setup.cache_path) if setup.cache_path is not None else None)
    options.setdefault("endpoint", setup.client.base_url)
    if hybrid:
        options.setdefault("window_tokens", setup.hybrid_window_tokens)
        return HybridExtractor(model, **options)
    return LLMExtractor(model, **options)


def _factory(hybrid: bool) -> Callable[..., LLMExtractor]:
    def make(llm: BaseChatModel | None = None, setup: LLMSetup | None = None, **options: Any) -> LLMExtractor:
        if setup is None:  # the edge registers it (extractors.base.set_default_options); else say who must
            raise ConfigError("the llm and hybrid extractors need their settings passed in (setup=LLMSetup(...)); "
                              "the CLI and API do this from the HEALTHTRACE_LLM_* settings")
        return build(setup, hybrid=hybrid, llm=llm, **options)

    return make


def estimate(docs: Sequence[SourceDocument], mode: str, setup: LLMSetup) -> CostEstimate:
    """Dry run: the endpoint is neither needed nor called (a placeholder model object is never invoked)."""
    ex = build(setup, hybrid=mode == HYBRID_NAME, llm=_NoCallModel())  # type: ignore[arg-type]
    return ex.estimate(docs)


class _NoCallModel:
    """Stands in for the chat model in a dry run; calling it is a bug."""

    def bind(self, **_: Any) -> Any:
        raise AssertionError("dry run must not call the LLM")

    bind_tools = bind
    invoke = bind


register_extractor(NAME, _factory(False))
register_extractor(HYBRID_NAME, _factory(True))
