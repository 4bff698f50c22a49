"""Playbooks: which next action to recommend for an account, as configurable YAML rules.

A rule matches on the current tier, on reason codes (of the current score's contributions and of the
drivers of a change), on the time left to renewal and on the size of a drop. Rules are tried in file
order; the first match is the recommendation, later matches are offered as alternatives. Pure: the caller
reads the file (or uses the bundled default) and passes plain values in.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from extractors.errors import ConfigError
from extractors.models import TIERS, Account, HealthScore, Recommendation, Tier, TierMove

MAX_PLAYBOOK_BYTES = 1024 * 1024
MAX_RULES = 500
DEFAULT_PLAYBOOKS = "default_playbooks.yaml"

Direction = Literal["negative", "positive", "any"]


def tier_move(before: Tier, after: Tier) -> TierMove:
    """TIERS runs from best to worst, so a higher index after the change is a move "down"."""
    i, j = TIERS.index(before), TIERS.index(after)
    return "down" if j > i else "up" if j < i else "none"


class RuleWhen(BaseModel):
    """Conditions of one rule; all given conditions must hold (an empty ``when`` always matches)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: list[Tier] | None = Field(default=None, min_length=1)
    reason_codes: list[str] | None = Field(default=None, min_length=1, max_length=100)
    direction: Direction = "negative"
    renewal_within_days: int | None = Field(default=None, ge=0, le=3650)
    min_drop: float | None = Field(default=None, gt=0, le=100)
    # a reason code only counts when its contribution (or its change) is worth at least this many points:
    # an escalation from months ago that has decayed to a fraction of a point should not drive the action
    min_points: float = Field(default=0.0, ge=0, le=100)
    # only metric/fact items whose 0-100 subscore is at most this count (e.g. 45: a clearly poor reading)
    max_subscore: float | None = Field(default=None, ge=0, le=100)
    tier_move: TierMove | None = None

    @field_validator("reason_codes")
    @classmethod
    def _patterns(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for p in v:
                if not p.strip() or len(p) > 200:
                    raise ValueError(f"reason code pattern {p!r} must be 1-200 characters")
        return v


class PlaybookRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    action: str = Field(min_length=1, max_length=1000)
    why: str | None = Field(default=None, max_length=1000)
    when: RuleWhen = Field(default_factory=RuleWhen)


class Playbooks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    # strongest: after the leading rules without reason codes (tier gates such as Critical), the rule whose
    # matched reason codes weigh most wins, so the action follows the main negative driver; file: first match.
    order: Literal["strongest", "file"] = "strongest"
    rules: list[PlaybookRule] = Field(min_length=1, max_length=MAX_RULES)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, v: list[PlaybookRule]) -> list[PlaybookRule]:
        seen: set[str] = set()
        for r in v:
            if r.id in seen:
                raise ValueError(f"duplicate rule id {r.id!r}")
            seen.add(r.id)
        return v


@dataclass(frozen=True)
class PlaybookContext:
    """What the rules look at, computed once from a score (and optionally the change that led to it)."""

    tier: Tier
    negative_codes: Mapping[str, float] = field(default_factory=dict)  # code -> largest |points| it takes away
    positive_codes: Mapping[str, float] = field(default_factory=dict)  # code -> largest points it adds
    subscores: Mapping[str, float] = field(default_factory=dict)  # metric/fact code -> lowest subscore now
    days_to_renewal: int | None = None
    delta: float | None = None
    tier_move: TierMove | None = None


def _problem(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


def parse_playbooks(text: str, *, source: str = "<playbooks>") -> Playbooks:
    """Validate a playbook YAML document; any problem is a ConfigError naming the file and the field."""
    if len(text) > MAX_PLAYBOOK_BYTES:
        raise ConfigError(f"{source}: playbook file is over {MAX_PLAYBOOK_BYTES} bytes")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with 'version' and 'rules', got {type(raw).__name__}")
    try:
        return Playbooks.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{source}: invalid playbook: {_problem(e)}") from None


def load_playbooks(path: str | Path | None = None) -> Playbooks:
    """The playbooks in ``path``, or the bundled defaults when no path is given."""
    if path is None:
        text = resources.files("scoring").joinpath(DEFAULT_PLAYBOOKS).read_text("utf-8")
        return parse_playbooks(text, source=DEFAULT_PLAYBOOKS)
    p = Path(path)
    try:
        if p.stat().st_size > MAX_PLAYBOOK_BYTES:
            raise ConfigError(f"{p}: playbook file is over {MAX_PLAYBOOK_BYTES} bytes")
        text = p.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: playbook file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read playbook file: {e}") from None
    return parse_playbooks(text, source=str(p))


def context_for(
    score: HealthScore,
    *,
    previous: HealthScore | None = None,
    account: Account | None = None,
    driver_points: Iterable[tuple[str, float]] = (),
) -> PlaybookContext:
    """Reason codes count as negative when the contribution takes points away now, or its change did."""
    neg: dict[str, float] = {}
    pos: dict[str, float] = {}

    def note(code: str, points: float) -> None:
        pool = neg if points < 0 else pos
        if points != 0:
            pool[code] = max(pool.get(code, 0.0), abs(points))

    subs: dict[str, float] = {}
    for c in score.contributions:
        note(c.reason_code, c.points)
        if c.metric is not None and c.metric.subscore is not None:
            subs[c.reason_code] = min(subs.get(c.reason_code, 100.0), c.metric.subscore)
    for code, delta in driver_points:
        note(code, delta)
    days = None
    if account is not None and account.end_date is not None:
        days = (account.end_date - score.as_of).days
    delta = move = None
    if previous is not None:
        delta = score.score - previous.score
        move = tier_move(previous.tier, score.tier)
    return PlaybookContext(
        tier=score.tier,
        negative_codes=neg,
        positive_codes=pos,
        subscores=subs,
        days_to_renewal=days,
        delta=delta,
        tier_move=move,
    )


def _matches(when: RuleWhen, ctx: PlaybookContext) -> tuple[bool, tuple[str, ...], float]:
    if when.tiers is not None and ctx.tier not in when.tiers:
        return False, (), 0.0
    if when.renewal_within_days is not None:
        if ctx.days_to_renewal is None or not 0 <= ctx.days_to_renewal <= when.renewal_within_days:
            return False, (), 0.0
    if when.min_drop is not None and (ctx.delta is None or -ctx.delta < when.min_drop):
        return False, (), 0.0
    if when.tier_move is not None and ctx.tier_move != when.tier_move:
        return False, (), 0.0
    matched: tuple[str, ...] = ()
    pool: dict[str, float] = {}
    if when.reason_codes is not None:
        if when.direction in ("negative", "any"):
            pool.update(ctx.negative_codes)
        if when.direction in ("positive", "any"):
            for code, pts in ctx.positive_codes.items():
                pool[code] = max(pool.get(code, 0.0), pts)
        matched = tuple(sorted(
            c for c, pts in pool.items()
            if pts >= when.min_points
            and (when.max_subscore is None or ctx.subscores.get(c, 101.0) <= when.max_subscore)
            and any(fnmatch.fnmatchcase(c, p) for p in when.reason_codes)
        ))
        if not matched:
            return False, (), 0.0
    return True, matched, max((pool[c] for c in matched), default=0.0)


def recommend(playbooks: Playbooks, ctx: PlaybookContext) -> list[Recommendation]:
    """Every matching rule; the first is the recommended action (see :attr:`Playbooks.order`)."""
    found: list[tuple[int, float, int, Recommendation]] = []
    gate = True  # leading rules without reason codes keep their place at the top
    for i, rule in enumerate(playbooks.rules):
        coded = rule.when.reason_codes is not None
        gate = gate and not coded
        ok, matched, strength = _matches(rule.when, ctx)
        if not ok:
            continue
        rec = Recommendation(playbook=rule.id, action=rule.action, why=rule.why, matched=list(matched))
        if playbooks.order == "file":
            found.append((0, 0.0, i, rec))
        elif gate:
            found.append((0, 0.0, i, rec))
        elif coded:
            found.append((1, -strength, i, rec))
        else:
            found.append((2, 0.0, i, rec))
    return [r for *_, r in sorted(found, key=lambda t: t[:3])]
