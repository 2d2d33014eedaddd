"""The jurisdiction file: the demo loads, malformed variants are refused with a message naming
the bad entry, deadline strings parse, and `whistle jurisdiction check` reports either way."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from schemas.deadline import DeadlineSpec
from schemas.jurisdiction import Level
from whistle.config import DEMO_JURISDICTION
from whistle.jurisdiction import JurisdictionError, load_jurisdiction

WHISTLE = Path(sys.executable).parent / "whistle"


@pytest.fixture(scope="module")
def demo_data() -> dict:
    return yaml.safe_load(DEMO_JURISDICTION.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "jurisdiction.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _unit(data: dict, unit_id: str) -> dict:
    return next(u for u in data["units"] if u["id"] == unit_id)


def _first(data: dict, level: str) -> dict:
    return next(u for u in data["units"] if u["level"] == level)


# The demo file --------------------------------------------------------------------------------


def test_demo_has_the_expected_shape(demo):
    streets = [u for u in demo.units if u.level == Level.street]
    areas = [u for u in demo.units if u.level == Level.area]
    assert len(streets) >= 3
    assert areas
    communities_per_area = Counter(u.parent for u in demo.units if u.level == Level.community)
    for area in areas:
        assert 4 <= communities_per_area[area.id] <= 6, area.id
    assert len(demo.departments) >= 8
    assert len(demo.categories) >= 20


def test_demo_duty_lists_have_every_kind(demo):
    kinds = ("statutory", "assistance", "negative")
    assert set(demo.duty_lists) <= {Level.grid, Level.community, Level.area, Level.street}
    for kind in kinds:
        assert any(duties.categories(kind) for duties in demo.duty_lists.values()), kind
    community = demo.duty_lists[Level.community]
    assert all(community.categories(kind) for kind in kinds)
    assert demo.is_duty(Level.community, "neighbour-dispute")
    assert demo.is_duty(Level.community, "illegal-construction", "negative")
    assert not demo.is_duty(Level.community, "illegal-construction")


def test_every_category_routes_to_existing_departments(demo):
    departments = {d.id for d in demo.departments}
    for cat in demo.categories:
        assert cat.lead_department in departments, cat.id
        assert set(cat.cooperating_departments) <= departments, cat.id


def test_chain_of_a_grid_reaches_the_district(demo):
    grid = next(u for u in demo.units if u.level == Level.grid)
    chain = demo.chain(grid.id)
    assert list(chain) == [Level.grid, Level.community, Level.area, Level.street, Level.district]
    assert chain[Level.grid] == grid.id
    assert chain[Level.community] == grid.parent
    assert chain[Level.area] == demo.unit(grid.parent).parent
    assert chain[Level.district] == "demo-district"
    for level, unit_id in chain.items():
        assert demo.unit(unit_id).level == level


# Broken variants -----------------------------------------------------------------------------


def _unknown_parent(d):
    grid = _first(d, "grid")
    grid["parent"] = "no-such-community"
    return [grid["id"], "no-such-community", "unknown parent"]


def _missing_department(d):
    cat = d["categories"][0]
    cat["lead_department"] = "ghost-bureau"
    return [cat["id"], "ghost-bureau", "missing department"]


def _cycle(d):
    area = _first(d, "area")
    community = next(u for u in d["units"] if u.get("parent") == area["id"])
    area["parent"] = community["id"]  # area -> community -> area
    return [area["id"], community["id"], "cycle"]


def _duplicate_unit(d):
    grid = copy.deepcopy(_first(d, "grid"))
    d["units"].append(grid)
    return [grid["id"], "duplicate unit id"]


def _duplicate_category(d):
    cat = copy.deepcopy(d["categories"][-1])
    d["categories"].append(cat)
    return [cat["id"], "duplicate category id"]


def _unknown_duty_category(d):
    d["duty_lists"]["street"]["assistance"].append({"category": "no-such-category"})
    return ["duty_lists.street.assistance", "no-such-category", "unknown category"]


def _bad_deadline(d):
    d["policies"]["department"]["accept"] = "three days"
    return ["policies.department.accept", "three days"]


@pytest.mark.parametrize(
    "mutate",
    [
        _unknown_parent,
        _missing_department,
        _cycle,
        _duplicate_unit,
        _duplicate_category,
        _unknown_duty_category,
        _bad_deadline,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_broken_jurisdiction_is_refused_naming_the_entry(tmp_path, demo_data, mutate):
    data = copy.deepcopy(demo_data)
    expected = mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(JurisdictionError) as info:
        load_jurisdiction(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_unmodified_copy_loads(tmp_path, demo_data, demo):
    """Guards the table above: the round trip through yaml.safe_dump alone breaks nothing."""
    j = load_jurisdiction(_write(tmp_path, copy.deepcopy(demo_data)))
    assert j == demo


def test_not_yaml_is_refused(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("units: [unclosed\n  - {id: x\n", encoding="utf-8")
    with pytest.raises(JurisdictionError, match="not valid YAML") as info:
        load_jurisdiction(path)
    assert "broken.yaml" in str(info.value)


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(JurisdictionError, match="mapping"):
        load_jurisdiction(path)


def test_missing_file_is_refused(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(JurisdictionError, match="cannot read") as info:
        load_jurisdiction(path)
    assert "nowhere.yaml" in str(info.value)


# DeadlineSpec -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "working_days", "duration"),
    [
        ("3WD", 3, None),
        (" 10 working days ", 10, None),
        ("PT30M", None, timedelta(minutes=30)),
        ("PT3S", None, timedelta(seconds=3)),
        ("pt3s", None, timedelta(seconds=3)),
        ("P1DT2H", None, timedelta(days=1, hours=2)),
        ({"working_days": 2}, 2, None),
    ],
)
def test_deadline_spec_parses(value, working_days, duration):
    spec = DeadlineSpec.model_validate(value)
    assert spec.working_days == working_days
    assert spec.duration == duration


@pytest.mark.parametrize(
    "value",
    [
        "3 days",
        "",
        "PT0S",
        "0WD",
        "P",
        "PT",
        {"working_days": 2, "duration": "PT30M"},
        {},
    ],
)
def test_deadline_spec_rejects(value):
    with pytest.raises(ValidationError):
        DeadlineSpec.model_validate(value)


def test_deadline_spec_str_round_trips():
    for text in ("3WD", "PT30M", "P1DT2H"):
        spec = DeadlineSpec.model_validate(text)
        assert DeadlineSpec.model_validate(str(spec)) == spec


# The CLI ------------------------------------------------------------------------------------


def _check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(WHISTLE), "jurisdiction", "check", str(path)], capture_output=True, text=True, timeout=120
    )


def test_cli_check_accepts_the_demo():
    result = _check(DEMO_JURISDICTION)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_check_refuses_a_broken_file(tmp_path, demo_data):
    data = copy.deepcopy(demo_data)
    data["categories"][0]["lead_department"] = "ghost-bureau"
    result = _check(_write(tmp_path, data))
    assert result.returncode == 1
    assert "ghost-bureau" in result.stderr
    assert "Traceback" not in result.stderr
    assert "valid" not in result.stdout


def test_cli_check_refuses_a_missing_file(tmp_path):
    result = _check(tmp_path / "nowhere.yaml")
    assert result.returncode == 1
    assert "nowhere.yaml" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("text", ["P999999999D", "P9999999999D", "P400D"])
def test_absurd_durations_are_refused_not_overflowing(text):
    from pydantic import ValidationError

    from schemas.deadline import DeadlineSpec

    with pytest.raises(ValidationError, match="at most 366 days|too long"):
        DeadlineSpec.model_validate(text)
