"""The ladder's rules, without a server (domain/ladder.py)."""

from __future__ import annotations

import pytest

from domain.ladder import LADDER, PARENT, TREE_ORDER, Level, next_level, on_ladder
from schemas.issue import LADDER_STAGES, Stage


@pytest.mark.parametrize(("level", "up"), [
    (Level.grid, Level.community), (Level.community, Level.area), (Level.area, Level.street), ("grid", Level.community),
])
def test_an_issue_climbs_one_level_at_a_time(level, up):
    assert next_level(level) == up


@pytest.mark.parametrize("level", [Level.street, Level.department, Level.district])
def test_nothing_is_above_the_street_on_the_ladder(level):
    with pytest.raises(ValueError, match="street dispatches"):
        next_level(level)


def test_the_stages_on_the_ladder_are_its_levels_in_order():
    assert [s.value for s in LADDER_STAGES] == [lvl.value for lvl in LADDER] == ["grid", "community", "area", "street"]
    assert all(on_ladder(s) for s in LADDER_STAGES)
    assert not on_ladder(Stage.department) and not on_ladder(Level.district)


def test_the_tree_lists_every_parent_before_its_children():
    for child, parent in PARENT.items():
        assert TREE_ORDER.index(parent) < TREE_ORDER.index(child)
    assert set(TREE_ORDER) == set(Level) - {Level.department}
