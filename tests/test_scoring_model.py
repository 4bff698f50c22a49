"""Model files: the bundled default, the YAML round trip, the content hash, profiles and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from extractors.errors import ModelFileError
from scoring.model import PiecewiseMap, bundled_models, default_model, dump_model, load_model, parse_model


def _default_dict() -> dict:
    return default_model().model_dump(mode="json")


def test_default_model_loads_with_documented_weights() -> None:
    m = default_model()
    assert {c: m.categories[c].weight for c in m.categories} == {
        "adoption": 30, "relationship": 25, "outcome": 25, "risk": 20,
    }
    names = {r.metric for r in m.metrics}
    for metric in ("active_users", "output_acceptance_rate", "regeneration_rate", "workflow_completion_rate",
                   "nps", "csat", "open_critical_tickets", "ticket_age_days", "payment_delay_days", "arr_change_pct"):
        assert metric in names
    assert len(m.content_hash) == 64
    assert "default" in bundled_models()


def test_yaml_round_trip_keeps_model_and_hash(tmp_path: Path) -> None:
    m = default_model()
    f = tmp_path / "m.yaml"
    f.write_text(dump_model(m), encoding="utf-8")
    back = load_model(f)
    assert back == m
    assert back.content_hash == m.content_hash


def test_hash_ignores_layout_but_not_content(tmp_path: Path) -> None:
    data = _default_dict()
    a = tmp_path / "a.yaml"
    a.write_text("# a comment\n" + yaml.safe_dump(data, sort_keys=True), encoding="utf-8")
    assert load_model(a).content_hash == default_model().content_hash
    data["categories"]["risk"]["weight"] = 21
    b = tmp_path / "b.yaml"
    b.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_model(b).content_hash != default_model().content_hash


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["metrics"][0]["map"].update(points=[[0, 10], [1, 50], [2, 20]]), "metrics.0.map.points"),
        (lambda d: d["metrics"][0]["map"].update(points=[[1, 10], [1, 50]]), "metrics.0.map.points"),
        (lambda d: d["signals"].update(not_a_type={"points": 3}), "signals"),
        (lambda d: d["categories"].pop("risk"), "categories"),
        (lambda d: d["categories"]["risk"].update(weight=-1), "categories.risk.weight"),
        (lambda d: d["metrics"][0].update(transform="median"), "metrics.0.transform"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["metrics"].append(dict(d["metrics"][0])), "duplicate metric"),
    ],
)
def test_invalid_model_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    data = _default_dict()
    mutate(data)
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ModelFileError) as e:
        load_model(f)
    msg = str(e.value)
    assert str(f) in msg
    assert field in msg


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read"):
        load_model(tmp_path / "missing.yaml")
    f = tmp_path / "x.yaml"
    f.write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(ModelFileError, match="not valid YAML"):
        load_model(f)
    f.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ModelFileError, match="must be a mapping"):
        load_model(f)


def test_profiles_override_and_bad_profile_is_rejected() -> None:
    m = default_model()
    ent = m.for_segment("enterprise")
    assert ent.categories["relationship"].weight == 30
    assert ent.categories["outcome"].weight == m.categories["outcome"].weight
    assert m.for_segment("no-such-segment") is m
    assert m.for_segment(None) is m
    data = _default_dict()
    data["profiles"] = {"x": {"categories": {"risk": {"weight": "lots"}}}}
    with pytest.raises(ModelFileError, match="profile 'x'.*categories.risk.weight"):
        parse_model(data, source="inline")
    data["profiles"] = {"x": {"metrics": [{"metric": "active_users", "transform": "trend", "weight": 9}]}}
    merged = parse_model(data).for_segment("x")
    trend = [r for r in merged.metrics if r.key == "metric:active_users:trend"]
    assert len(trend) == 1 and trend[0].weight == 9 and trend[0].window_days == 60


def test_piecewise_map_interpolates_and_clamps() -> None:
    up = PiecewiseMap(points=[(0, 0), (10, 50), (20, 100)])
    assert up(-5) == 0 and up(5) == 25 and up(15) == 75 and up(99) == 100
    down = PiecewiseMap(points=[(0, 100), (10, 0)])
    assert down(2.5) == 75
    with pytest.raises(ValueError):
        PiecewiseMap(points=[(0, 0), (1, 101)])
