"""The escalation ladder: the levels an issue climbs, bottom up, until the street blows the
whistle (吹哨) and departments report in (报到). The one home of the ladder's order: the unit
tree's validation, the workflow's next stage and the read model's unit order read it here."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """Levels of the unit tree, bottom up. `department` sits beside the tree, under the district."""

    grid = "grid"
    community = "community"
    area = "area"
    street = "street"
    department = "department"
    district = "district"


# The levels an issue climbs, bottom up. An issue's stage on the ladder has the level's name.
LADDER: tuple[Level, ...] = (Level.grid, Level.community, Level.area, Level.street)

# Each tree level's parent: a grid belongs to a community, …, a street to the district.
PARENT: dict[Level, Level] = {
    Level.grid: Level.community,
    Level.community: Level.area,
    Level.area: Level.street,
    Level.street: Level.district,
}

# Top down: every unit after its parent (the order units are written in).
TREE_ORDER: tuple[Level, ...] = (Level.district, Level.street, Level.area, Level.community, Level.grid)


def next_level(level: Level | str) -> Level:
    """The level an issue escalates to from `level`. The street is the top of the ladder: it
    dispatches to departments instead of escalating."""
    level = Level(level)
    if level not in LADDER or level == LADDER[-1]:
        raise ValueError(f"no level above {level} on the ladder: the street dispatches to departments")
    return LADDER[LADDER.index(level) + 1]


def on_ladder(level: Level | str) -> bool:
    return level in LADDER  # a Stage or a plain string compares by its value


def duty_pass_on(level: Level, duty: str | None, auto_routed: bool) -> str | None:
    """The duty-list rule (职责清单): why an issue that reaches `level` passes on up the ladder at
    once, or None when the level handles it. The community assesses everything that reaches it;
    the area only what reached it by that automatic routing (a community's own whistle asks
    the area to coordinate). Only a statutory duty (`duty == "statutory"`) stays."""
    assessed = level == Level.community or (level == Level.area and auto_routed)
    if not assessed or duty == "statutory":
        return None
    return {
        "negative": f"on the {level} negative list: must not be pushed down",
        "assistance": f"an assistance item for the {level}: a department leads",
    }.get(duty or "", f"not on the {level} duty list")
