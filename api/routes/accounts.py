"""Accounts: the portfolio sorted by risk, one account's health now / at a date, history, narrated changes,
why, recap, evidence search, what-if and CSM overrides. Every query is bounded by the caller's tenant."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from api.deps import Reader, Service, SettingsDep, State, Writer
from api.schemas import (
    ApiDay,
    AccountOut,
    AccountPage,
    AccountsIn,
    ChangeOut,
    ChangesOut,
    ErrorOut,
    EvidenceHit,
    EvidenceOut,
    HealthOut,
    HistoryOut,
    HistoryPoint,
    OverrideIn,
    OverrideOut,
    RecapOut,
    ScoreChangeOut,
    SignalReviewIn,
    SignalReviewOut,
    UpsertResult,
    WhatIfChange,
    WhatIfIn,
    WhatIfOut,
)
from api.service import Rescored, today, top_reasons
from extractors.errors import InputError, InputTooLargeError
from extractors.models import TIERS, Account, HealthScore, Tier

router = APIRouter(
    prefix="/v1/accounts",
    tags=["accounts"],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 429: {"model": ErrorOut}},
)

AccountId = Annotated[str, Path(min_length=1, max_length=200, description="the account's id in your CRM")]
Day = Annotated[ApiDay | None, Query(description="YYYY-MM-DD within the supported range")]


def health_out(s: HealthScore) -> HealthOut:
    return HealthOut.model_validate(s.model_dump())


def change_out(narrative: object) -> ChangeOut:
    data = narrative.model_dump()  # type: ignore[attr-defined]
    data["recommended_action"] = data.pop("recommendation", None)
    return ChangeOut.model_validate(data)


def score_change(r: Rescored) -> ScoreChangeOut:
    return ScoreChangeOut(
        account_id=r.account_id,
        score_before=r.previous.score if r.previous else None,
        score=r.score.score,
        tier_before=r.previous.tier if r.previous else None,
        tier=r.score.tier,
        as_of=r.score.as_of,
        events=r.events,
    )


def _account_out(a: Account, s: HealthScore | None, updated_at: datetime | None = None,
                 override: OverrideOut | None = None) -> AccountOut:
    return AccountOut(
        account_id=a.account_id, name=a.name, segment=a.segment, start_date=a.start_date, end_date=a.end_date,
        score=s.score if s else None, tier=s.tier if s else None, as_of=s.as_of if s else None,
        top_reasons=top_reasons(s) if s else [], updated_at=updated_at, override=override,
    )


def _overrides_by_account(service: object, tenant: str) -> dict[str, OverrideOut]:
    from scoring.overrides import latest_by_account

    rows = service.feedback.overrides(tenant=tenant)  # type: ignore[attr-defined]
    by_id = {r.get("id"): r for r in rows}
    return {aid: _override_out({**by_id.get(v["id"], {}), **v}) for aid, v in latest_by_account(rows).items()}


@router.put("", response_model=UpsertResult)
def upsert_accounts(body: AccountsIn, principal: Writer, service: Service, settings: SettingsDep) -> UpsertResult:
    """Create or update accounts of your tenant (idempotent)."""
    if len(body.accounts) > settings.api_max_batch:
        raise InputTooLargeError(f"{len(body.accounts)} accounts in one call; the limit is {settings.api_max_batch}")
    accounts = [Account(**a.model_dump(), tenant=principal.tenant) for a in body.accounts]
    changed = service.upsert_accounts(principal.tenant, accounts)
    return UpsertResult(received=len(accounts), changed=changed)


@router.get("", response_model=AccountPage)
def list_accounts(
    principal: Reader,
    service: Service,
    tier: Annotated[list[Tier] | None, Query(description="only these tiers")] = None,
    segment: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="substring of id or name")] = None,
    min_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    sort: Literal["risk", "score_desc", "name"] = "risk",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AccountPage:
    """Accounts sorted by risk (lowest score first; unscored last), filtered and paginated."""
    rows = service.portfolio(principal.tenant)
    needle = q.lower() if q else None
    kept = []
    for a, s, at in rows:
        if segment is not None and a.segment != segment:
            continue
        if needle and needle not in a.account_id.lower() and needle not in (a.name or "").lower():
            continue
        if min_score is not None and (s is None or s.score < min_score):
            continue
        if max_score is not None and (s is None or s.score > max_score):
            continue
        kept.append((a, s, at))
    tiers = {t: 0 for t in TIERS}
    for _, s, _ in kept:
        if s is not None:
            tiers[s.tier] += 1
    if tier:
        kept = [r for r in kept if r[1] is not None and r[1].tier in tier]
    if sort == "risk":
        kept.sort(key=lambda r: (r[1] is None, r[1].score if r[1] else 0.0, r[0].account_id))
    elif sort == "score_desc":
        kept.sort(key=lambda r: (r[1] is None, -(r[1].score if r[1] else 0.0), r[0].account_id))
    else:
        kept.sort(key=lambda r: ((r[0].name or r[0].account_id).lower(), r[0].account_id))
    page = kept[offset : offset + limit]
    overrides = _overrides_by_account(service, principal.tenant) if page else {}
    items = [_account_out(a, s, at, overrides.get(a.account_id)) for a, s, at in page]
    return AccountPage(items=items, total=len(kept), limit=limit, offset=offset, tiers=tiers)


@router.get("/{account_id}", response_model=AccountOut)
def get_account(account_id: AccountId, principal: Reader, service: Service) -> AccountOut:
    return _account_out(service.account(principal.tenant, account_id), service.latest(principal.tenant, account_id),
                        override=_latest_override(service, principal.tenant, account_id))


@router.get("/{account_id}/health", response_model=HealthOut)
async def get_health(account_id: AccountId, principal: Reader, service: Service, as_of: Day = None) -> Response:
    """The latest stored score, or the score as of a date (stored snapshot of that day, else computed).

    ``async`` on purpose, like ``why``: the hot read is two indexed queries (~1 ms), cheaper inline on the
    event loop than a thread-pool hop; the rare compute fallback is the same small amount of work."""
    account, (snap,), _ = service.snapshots_read(principal.tenant, account_id, [as_of])
    score = snap if snap is not None else service.health_of(principal.tenant, account, as_of)
    # serialised directly (the hot path of CS platforms polling scores): same shape as HealthOut
    return Response(health_out(score).model_dump_json().encode(), media_type="application/json")


@router.get("/{account_id}/history", response_model=HistoryOut)
def get_history(
    account_id: AccountId,
    principal: Reader,
    service: Service,
    since: Day = None,
    until: Day = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> HistoryOut:
    """Stored snapshots of the active model, oldest first (the score-history chart)."""
    service.account(principal.tenant, account_id)
    model_id = service.model(principal.tenant).id
    snaps = service.ledger.snapshots_for(account_id, model_id=model_id, tenant=principal.tenant) or \
        service.ledger.snapshots_for(account_id, tenant=principal.tenant)
    pts = [
        HistoryPoint(as_of=s.as_of, score=s.score, tier=s.tier, model_id=s.model_id, model_version=s.model_version)
        for s in snaps
        if (since is None or s.as_of >= since) and (until is None or s.as_of <= until)
    ]
    return HistoryOut(account_id=account_id, points=pts[-limit:])


@router.get("/{account_id}/changes", response_model=ChangesOut)
def get_changes(
    account_id: AccountId,
    principal: Reader,
    service: Service,
    since: Day = None,
    min_delta: Annotated[float, Query(ge=0, le=100)] = 0.5,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ChangesOut:
    """Narrated changes between consecutive snapshots, newest first, each driver with its citations."""
    from scoring.narrate import narrate

    account = service.account(principal.tenant, account_id)
    model_id = service.model(principal.tenant).id
    snaps = service.ledger.snapshots_for(account_id, model_id=model_id, tenant=principal.tenant)
    kinds = service.source_kinds(principal.tenant, account_id)
    out: list[ChangeOut] = []
    for before, after in reversed(list(zip(snaps, snaps[1:]))):
        if since is not None and after.as_of < since:
            break
        if abs(after.score - before.score) < min_delta and before.tier == after.tier:
            continue
        out.append(change_out(narrate(before, after, account=account, source_kinds=kinds)))
        if len(out) >= limit:
            break
    return ChangesOut(account_id=account_id, changes=out)


@router.get("/{account_id}/why", response_model=ChangeOut)
async def get_why(
    account_id: AccountId,
    principal: Reader,
    service: Service,
    since: Day = None,
    as_of: Day = None,
) -> ChangeOut:
    """Why the score moved between ``since`` (default: 30 days before) and ``as_of`` (default: latest)."""
    story = service.why(principal.tenant, account_id, since=since, as_of=as_of)
    out = change_out(story)
    out.override = _latest_override(service, principal.tenant, account_id, story.to_as_of)
    return out


@router.get("/{account_id}/recap", response_model=RecapOut)
def get_recap(
    account_id: AccountId,
    principal: Reader,
    service: Service,
    audience: Literal["csm", "exec"] = "csm",
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> RecapOut:
    """A Markdown recap for a QBR or an internal review: score, what changed, cited evidence, risks."""
    from scoring.narrate import narrate
    from scoring.recap import render_recap

    account = service.account(principal.tenant, account_id)
    now = service.health_of(principal.tenant, account, None)
    before = service.health_of(principal.tenant, account, now.as_of - timedelta(days=days))
    kinds = service.source_kinds(principal.tenant, account_id)
    story = narrate(before, now, account=account, source_kinds=kinds) if before.as_of < now.as_of else None
    ov = _latest_override(service, principal.tenant, account_id, now.as_of)
    md = render_recap(account, now, story, audience=audience, days=days, source_kinds=kinds,
                      override=ov.model_dump() if ov is not None else None)
    return RecapOut(account_id=account_id, as_of=now.as_of, audience=audience, markdown=md)


@router.get("/{account_id}/evidence", response_model=EvidenceOut)
def search_evidence(
    account_id: AccountId,
    principal: Reader,
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=500, description="what to look for")],
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    since: Day = None,
    type: Annotated[str | None, Query(max_length=60, description="signal type")] = None,
) -> EvidenceOut:
    """Cited passages and signals of this account, best first (vector search filtered by tenant+account)."""
    state.service.account(principal.tenant, account_id)
    memory = _vectors(state)
    if not q.strip():
        raise InputError("q must not be blank")
    hits = memory.search(account_id, q, tenant=principal.tenant, k=k, since=since, type=type)
    out = []
    for h in hits:
        m = h.metadata
        if m.get("tenant", principal.tenant) != principal.tenant:  # defence in depth: the filter already did this
            continue
        if m.get("start") is None or m.get("end") is None or not m.get("source_id"):
            continue  # an unverified signal has no passage to show
        is_signal = m.get("kind") == "signal"
        out.append(EvidenceHit(
            kind="signal" if is_signal else "passage", account_id=m.get("account_id"), source_id=str(m["source_id"]),
            start=int(m["start"]), end=int(m["end"]), quote=str(m.get("quote") or h.text), score=h.score,
            signal_type=m.get("type") if is_signal else None, occurred_at=m.get("date_iso") or None,
            source_path=m.get("source_path"),
        ))
    return EvidenceOut(query=q, hits=out)


def _vectors(state: object) -> object:
    """The app's vector memory: the container's, opened on first use (chroma is heavy; most requests never
    need it)."""
    return state.services.vectors  # type: ignore[attr-defined]


@router.post("/{account_id}/whatif", response_model=WhatIfOut)
def what_if(account_id: AccountId, body: WhatIfIn, principal: Reader, service: Service) -> WhatIfOut:
    """Score a hypothetical as of today (``set`` metric changes, ``add_signals``). Nothing is stored."""
    from scoring.narrate import narrate
    from scoring.whatif import parse_change, whatif

    account = service.account(principal.tenant, account_id)
    day = today()
    changes = [parse_change(c) for c in body.set]
    model = service.model(principal.tenant)
    signals, usage, facts, expected, mm = service.inputs(principal.tenant, account, day, model=model)
    if mm is not None:  # the changed metrics in the model's names and units, as scoring reads them
        from scoring.whatif import map_change

        changes = [map_change(mm, c) for c in changes]
    w = whatif(signals, usage, account, model, day, set_metrics=changes, add_signals=body.add_signals, facts=facts,
               expected_metrics=expected)
    text = narrate(w.before, w.after, account=account).text
    return WhatIfOut(
        account_id=account_id, changes=w.changes, baseline=health_out(w.before), scenario=health_out(w.after),
        delta=w.delta, text=text,
        contributions=[WhatIfChange(key=c.key, reason=c.reason_after or c.reason_before, before=c.before,
                                    after=c.after, delta=c.delta) for c in w.contributions[:30]],
    )


def _override_out(row: dict) -> OverrideOut:  # type: ignore[type-arg]
    code = row.get("reason_code", row.get("reason"))
    return OverrideOut.model_validate({**row, "reason_code": code, "reason": code})


def _latest_override(service: object, tenant: str, account_id: str, on: object = None) -> OverrideOut | None:
    from scoring.overrides import latest_override

    rows = service.feedback.overrides(account_id=account_id, tenant=tenant)  # type: ignore[attr-defined]
    v = latest_override(rows, on)  # type: ignore[arg-type]
    return _override_out({**next(r for r in rows if r.get("id") == v["id"]), **v}) if v is not None else None


@router.post("/{account_id}/overrides", response_model=OverrideOut, status_code=201)
def add_override(account_id: AccountId, body: OverrideIn, principal: Writer, service: Service) -> OverrideOut:
    """Record a CSM's tier/score judgement with a reason code, beside the model's score of that day."""
    row = service.add_override(principal.tenant, account_id, tier=body.tier, score=body.score, reason=body.reason_code,
                               note=body.note, author=body.author, as_of=body.as_of)
    return _override_out(row)


@router.get("/{account_id}/overrides", response_model=list[OverrideOut])
def list_overrides(account_id: AccountId, principal: Reader, service: Service) -> list[OverrideOut]:
    service.account(principal.tenant, account_id)
    return [_override_out(r) for r in service.feedback.overrides(account_id=account_id, tenant=principal.tenant)]


SignalId = Annotated[str, Path(min_length=1, max_length=64, description="a stored signal's id")]


@router.post("/{account_id}/signals/{signal_id}/review", response_model=SignalReviewOut, status_code=201)
def review_signal(account_id: AccountId, signal_id: SignalId, body: SignalReviewIn, principal: Writer,
                  service: Service) -> SignalReviewOut:
    """Confirm or reject a signal with a reason; the account is rescored at once (a rejected signal no longer
    counts). Reviewing again replaces the verdict."""
    row, rescored = service.review_signal(principal.tenant, account_id, signal_id, verdict=body.verdict,
                                          reason=body.reason, author=body.author)
    return SignalReviewOut.model_validate({**row, "score": score_change(rescored)})


@router.get("/{account_id}/reviews", response_model=list[SignalReviewOut])
def list_reviews(account_id: AccountId, principal: Reader, service: Service) -> list[SignalReviewOut]:
    service.account(principal.tenant, account_id)
    return [SignalReviewOut.model_validate(r)
            for r in service.ledger.signal_reviews(account_id=account_id, tenant=principal.tenant)]


@router.post("/{account_id}/rescore", response_model=ScoreChangeOut)
def rescore(account_id: AccountId, principal: Writer, service: Service) -> ScoreChangeOut:
    """Score now and store the snapshot (emits events when the score or tier moved)."""
    return score_change(service.rescore(principal.tenant, account_id))
