"""The ladder's rules, without a server (domain/ladder.py)."""

from __future__ import annotations

import pytest

from domain.ladder import LADDER, PARENT, TREE_ORDER, Level, duty_pass_on, next_level, on_ladder
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


@pytest.mark.parametrize(("level", "duty", "auto_routed", "passes_on"), [
    # The community assesses everything that reaches it: only a statutory duty stays.
    (Level.community, "statutory", False, None),
    (Level.community, None, False, "not on the community duty list"),
    (Level.community, "negative", False, "on the community negative list: must not be pushed down"),
    (Level.community, "assistance", False, "an assistance item for the community: a department leads"),
    # The area assesses only what the community's assessment routed to it.
    (Level.area, None, True, "not on the area duty list"),
    (Level.area, None, False, None),
    (Level.area, "statutory", True, None),
    # The grid and the street handle what reaches them.
    (Level.grid, None, False, None),
    (Level.street, "negative", True, None),
])
def test_the_duty_list_passes_on_what_a_level_must_not_hold(level, duty, auto_routed, passes_on):
    assert duty_pass_on(level, duty, auto_routed) == passes_on
