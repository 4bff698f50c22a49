"""Scoring model files: schema, loader, content hash and segment profiles.

A model file is YAML (format documented at the top of ``default_model.yaml``). It is a pydantic model so that
the calibration step can write one from code (``dump_model``) and read it back unchanged (round trip).
The content hash covers the canonical JSON of the whole model, so two files that differ only in layout or
comments hash the same, and any change of a weight or a map point gives a new hash.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from extractors.errors import ModelFileError
from extractors.models import CATEGORIES, Category, taxonomy

MAX_MODEL_BYTES = 1_000_000
MAX_MAP_POINTS = 64
MAX_ITEMS = 500

Transform = Literal["level", "trend", "change", "ratio", "days_since_last", "count"]
Aggregate = Literal["mean", "sum", "last", "max", "min", "count"]
Healthy = Literal["higher", "lower"]
# Units a rubric's reading is in, so narration writes a change in the metric's own unit.
Unit = Literal["count", "users", "seats", "share", "percent", "days", "score", "rating", "currency", "ratio"]
FactName = Literal[
    "days_to_renewal", "tenure_days", "distinct_contacts_90d", "days_since_last_conversation", "documents_90d"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PiecewiseMap(_Strict):
    """A monotone piecewise-linear map from a transform's value to a 0-100 subscore.

    ``points`` are ``[x, y]`` pairs with strictly increasing x; y must never go both up and down. Values below
    the first x take the first y, values above the last x the last y.
    """

    points: list[tuple[float, float]] = Field(min_length=2, max_length=MAX_MAP_POINTS)

    @field_validator("points")
    @classmethod
    def _monotone(cls, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        for a, b in zip(xs, xs[1:]):
            if not b > a:
                raise ValueError(f"x values must increase strictly, got {a} then {b}")
        for y in ys:
            if not 0 <= y <= 100:
                raise ValueError(f"y values must lie in 0-100, got {y}")
        steps = [b - a for a, b in zip(ys, ys[1:])]
        if any(s > 0 for s in steps) and any(s < 0 for s in steps):
            raise ValueError(f"map must be monotone (never both rising and falling), got y values {ys}")
        return pts

    @property
    def healthy(self) -> Healthy | None:
        """Which way the reading is healthy: a rising map means higher is better (None: a flat map)."""
        ys = [p[1] for p in self.points]
        return "higher" if ys[-1] > ys[0] else "lower" if ys[-1] < ys[0] else None

    def __call__(self, x: float) -> float:
        pts = self.points
        if x <= pts[0][0]:
            return float(pts[0][1])
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if x <= x1:
                return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
        return float(pts[-1][1])


class CategoryConfig(_Strict):
    weight: float = Field(ge=0, le=1000)
    # Subscore a category starts from when it has signals but no metric or fact item (e.g. risk from text only).
    neutral: float = Field(default=60.0, ge=0, le=100)


class SignalRule(_Strict):
    """Points one signal of a type adds to its category's subscore (negative for bad news)."""

    points: float = Field(ge=-100, le=100)
    half_life_days: float = Field(default=90.0, gt=0, le=3650)
    # 0: severity ignored; 1: points scale from 0x (severity 0) to 2x (severity 1) around severity 0.5.
    severity_scaling: float = Field(default=0.5, ge=0, le=1)


class SignalDefaults(_Strict):
    # The k-th signal of one type (0-based, strongest first) counts points * 1 / (1 + saturation * k).
    saturation: float = Field(default=1.0, ge=0, le=100)
    hedged_factor: float = Field(default=0.5, ge=0, le=1)
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    max_age_days: int = Field(default=730, gt=0, le=36500)


class MetricRubric(_Strict):
    """One usage metric, a transform over a window, and the map of the result to a 0-100 subscore."""

    metric: str = Field(min_length=1, max_length=100)
    transform: Transform = "level"
    aggregate: Aggregate = "mean"
    window_days: int = Field(default=30, gt=0, le=3650)
    denominator: str | None = Field(default=None, max_length=100)  # for transform "ratio"
    # ratio: None divides by the denominator's latest value (seats); an aggregate divides by the denominator's
    # aggregate over the same window (count/count = completion rate of submitted vs due).
    denominator_aggregate: Aggregate | None = None
    category: Category = "adoption"
    weight: float = Field(default=1.0, ge=0, le=1000)
    map: PiecewiseMap
    # Subscore when the transform has no reading (no rows yet); None leaves the item out of its category.
    # Calibration sets it so an additive model stays additive when a metric is absent.
    missing: float | None = Field(default=None, ge=0, le=100)
    # Tells apart two rubrics of one metric and transform (e.g. a count over 90 days and one over a year).
    name: str | None = Field(default=None, max_length=50, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    # The healthy direction of the reading and its unit: narration says "rose"/"fell" in this unit and a driver's
    # sign always agrees with this direction. Unset: the direction follows the map, the unit is guessed.
    healthy: Healthy | None = None
    unit: Unit | None = None
    # As for facts: a reading that is neutral most of the time (contracted seats that did not change) counts only
    # when its category has other data, so its first reading never moves a score by itself ("coverage").
    needs_other_data: bool = False

    @model_validator(mode="after")
    def _ratio_needs_denominator(self) -> MetricRubric:
        if self.transform == "ratio" and not self.denominator:
            raise ValueError("transform 'ratio' needs a denominator metric")
        _check_direction(self.healthy, self.map)
        return self

    @property
    def key(self) -> str:
        base = f"metric:{self.metric}:{self.transform}"
        return f"{base}:{self.name}" if self.name else base


class UnknownMetrics(_Strict):
    """How metrics the model does not name are still used (activity recency by default)."""

    enabled: bool = True
    transform: Literal["days_since_last", "change", "count"] = "days_since_last"
    window_days: int = Field(default=30, gt=0, le=3650)
    category: Category = "adoption"
    weight: float = Field(default=0.5, ge=0, le=1000)
    map: PiecewiseMap
    max_metrics: int = Field(default=20, ge=0, le=200)


class FactRubric(_Strict):
    fact: FactName
    category: Category
    weight: float = Field(default=1.0, ge=0, le=1000)
    map: PiecewiseMap
    description: str = ""
    # A calendar fact alone (e.g. days to renewal) says little: with this set it counts only when its
    # category has other data (signals, metrics or facts), instead of carrying the category's whole weight.
    needs_other_data: bool = False
    healthy: Healthy | None = None
    unit: Unit | None = None

    @model_validator(mode="after")
    def _direction(self) -> FactRubric:
        _check_direction(self.healthy, self.map)
        return self

    @property
    def key(self) -> str:
        return f"fact:{self.fact}"


class CapRule(_Strict):
    """A verified signal of this type caps the score (like the "any poor" rules of CS platforms).

    While a signal of ``signal`` dated within ``within_days`` of as-of counts (verified, not negated, not hedged,
    confidence and severity at least the minimums), the score is at most ``max_score``, whatever else is good.
    """

    signal: str
    max_score: float = Field(ge=0, le=100)
    within_days: int = Field(default=90, gt=0, le=3650)
    min_severity: float = Field(default=0.0, ge=0, le=1)
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    reason: str = Field(default="", max_length=300)


def _check_direction(healthy: str | None, pm: PiecewiseMap) -> None:
    derived = pm.healthy
    if healthy is not None and derived is not None and healthy != derived:
        raise ValueError(f"healthy: {healthy} contradicts the map, whose subscore is higher for "
                         f"{'higher' if derived == 'higher' else 'lower'} values")


class ScoringModel(_Strict):
    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    version: str = Field(min_length=1, max_length=50)
    description: str = ""
    categories: dict[Category, CategoryConfig]

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: object) -> object:
        """YAML reads ``version: 2`` as a number; a version is a label, so accept it as one."""
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    no_data_score: float = Field(default=50.0, ge=0, le=100)
    signal_defaults: SignalDefaults = SignalDefaults()
    signals: dict[str, SignalRule] = Field(default_factory=dict, max_length=MAX_ITEMS)
    metrics: list[MetricRubric] = Field(default_factory=list, max_length=MAX_ITEMS)
    unknown_metrics: UnknownMetrics | None = None
    facts: list[FactRubric] = Field(default_factory=list, max_length=MAX_ITEMS)
    caps: list[CapRule] = Field(default_factory=list, max_length=MAX_ITEMS)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict, max_length=MAX_ITEMS)
    # Training metadata written by ``healthtrace calibrate`` (data range, snapshot count, CV AUC...).
    calibration: dict[str, Any] | None = None

    @field_validator("categories")
    @classmethod
    def _all_categories(cls, v: dict[str, CategoryConfig]) -> dict[str, CategoryConfig]:
        missing = [c for c in CATEGORIES if c not in v]
        if missing:
            raise ValueError(f"missing categor{'y' if len(missing) == 1 else 'ies'}: {', '.join(missing)}")
        if sum(c.weight for c in v.values()) <= 0:
            raise ValueError("category weights must not all be zero")
        return {c: v[c] for c in CATEGORIES}

    @field_validator("signals")
    @classmethod
    def _known_signal_types(cls, v: dict[str, SignalRule]) -> dict[str, SignalRule]:
        known = taxonomy()
        bad = [t for t in v if t not in known]
        if bad:
            raise ValueError(f"unknown signal type(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return v

    @field_validator("caps")
    @classmethod
    def _caps_on_bad_news(cls, v: list[CapRule]) -> list[CapRule]:
        known = taxonomy()
        for c in v:
            if c.signal not in known:
                raise ValueError(f"cap on unknown signal type {c.signal!r}")
            if known[c.signal].polarity > 0:
                raise ValueError(f"cap on {c.signal!r}: only bad news may cap a score")
        return v

    @model_validator(mode="after")
    def _unique_keys(self) -> ScoringModel:
        for kind, keys in (("metric", [m.key for m in self.metrics]), ("fact", [f.key for f in self.facts])):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise ValueError(f"duplicate {kind} rubric(s): {', '.join(dup)} (one per metric and transform)")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def content_hash(self) -> str:
        return _hash_of(self)

    @property
    def known_metrics(self) -> frozenset[str]:
        names = {m.metric for m in self.metrics}
        names.update(m.denominator for m in self.metrics if m.denominator)
        return frozenset(names)

    def for_segment(self, segment: str | None) -> ScoringModel:
        """The model with the segment's profile applied (the model itself when there is none)."""
        if not segment or segment not in self.profiles:
            return self
        return _profile(self, segment)


def _hash_of(model: ScoringModel) -> str:
    data = model.model_dump(mode="json")
    # optional fields added later hash only when set, so older model files keep their hash
    if data.get("calibration") is None:
        data.pop("calibration", None)
    if not data.get("caps"):
        data.pop("caps", None)
    for m in data.get("metrics", []):
        for k in ("denominator_aggregate", "missing", "name", "healthy", "unit"):
            if m.get(k) is None:
                m.pop(k, None)
    for f in data.get("facts", []):
        for k in ("healthy", "unit"):
            if f.get(k) is None:
                f.pop(k, None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_profile_cache: dict[tuple[int, str], ScoringModel] = {}


def _merge_list(base: list[dict[str, Any]], over: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    """Profile list items replace base items with the same key (metric+transform, or fact) and append others."""
    out = [dict(b) for b in base]
    index = {tuple(b.get(k, _DEFAULT_KEY.get(k)) for k in key): i for i, b in enumerate(out)}
    for item in over:
        k = tuple(item.get(f, _DEFAULT_KEY.get(f)) for f in key)
        if k in index:
            out[index[k]] = {**out[index[k]], **item}
        else:
            out.append(dict(item))
    return out


_DEFAULT_KEY: dict[str, Any] = {"transform": "level", "name": None}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k == "metrics" and isinstance(v, list):
            out[k] = _merge_list(out.get(k, []), v, ("metric", "transform", "name"))
        elif k == "facts" and isinstance(v, list):
            out[k] = _merge_list(out.get(k, []), v, ("fact",))
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _profile(model: ScoringModel, segment: str) -> ScoringModel:
    ck = (id(model), segment)
    hit = _profile_cache.get(ck)
    if hit is not None:
        return hit
    base = model.model_dump(mode="json")
    base.pop("profiles")
    over = model.profiles[segment]
    if "profiles" in over or "id" in over or "version" in over:
        raise ModelFileError(f"profile {segment!r}: a profile may not set id, version or profiles")
    try:
        merged = ScoringModel.model_validate(_deep_merge(base, over))
    except ValidationError as e:
        raise ModelFileError(f"profile {segment!r}: {_readable(e)}") from None
    _profile_cache[ck] = merged
    return merged


def _readable(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = len(e.errors()) - 10
    return "; ".join(parts) + (f"; and {more} more problem(s)" if more > 0 else "")


def parse_model(data: Any, *, source: str = "<model>") -> ScoringModel:
    """Validate a decoded model file; every problem names the source and the field."""
    if not isinstance(data, dict):
        raise ModelFileError(f"{source}: a model file must be a mapping (id, version, categories, ...)")
    try:
        model = ScoringModel.model_validate(data)
    except ValidationError as e:
        raise ModelFileError(f"{source}: {_readable(e)}") from None
    for seg in model.profiles:  # a bad profile is a bad file, found at load time, not at scoring time
        try:
            model.for_segment(seg)
        except ModelFileError as e:
            raise ModelFileError(f"{source}: {e}") from None
    return model


def read_yaml_file(path: str | Path, *, what: str, limit: int, error: type[Exception]) -> Any:
    """A user's YAML file (a model, a metric mapping), bounded in size, with one-line errors naming it."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise error(f"{p}: cannot read {what} ({e.strerror})") from None
    if size > limit:
        raise error(f"{p}: {what} is {size} bytes; the limit is {limit}")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise error(f"{p}: not valid YAML: {' '.join(str(e).split())[:200]}") from None


def load_model(path: str | Path | None = None) -> ScoringModel:
    """Read and validate a model file; ``None`` gives the bundled default model."""
    if path is None:
        return default_model()
    data = read_yaml_file(path, what="model file", limit=MAX_MODEL_BYTES, error=ModelFileError)
    return parse_model(data, source=str(Path(path)))


@lru_cache(maxsize=1)
def default_model() -> ScoringModel:
    text = resources.files("scoring").joinpath("default_model.yaml").read_text("utf-8")
    return parse_model(yaml.safe_load(text), source="scoring/default_model.yaml")


def dump_model(model: ScoringModel) -> str:
    """YAML text for a model (what calibration writes); ``load_model`` reads it back to an equal model."""
    data = model.model_dump(mode="json", exclude_defaults=False)
    header = f"# healthtrace scoring model {model.id} v{model.version}\n# content hash {model.content_hash}\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def bundled_models() -> dict[str, Path]:
    """Model files shipped with the package: the default and any under ``scoring/models/``."""
    root = resources.files("scoring")
    out: dict[str, Path] = {"default": Path(str(root.joinpath("default_model.yaml")))}
    models_dir = root.joinpath("models")
    if models_dir.is_dir():
        for f in sorted(models_dir.iterdir(), key=lambda x: x.name):
            if f.name.endswith(".yaml"):
                out[f.name.removesuffix(".yaml")] = Path(str(f))
    return out
