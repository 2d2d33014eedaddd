"""The jurisdiction: unit tree, departments, duty lists, issue categories, deadline policies.

`Jurisdiction` validates its own consistency (unknown parents, cycles, duplicate ids, routes to
missing departments) so that a malformed data file stops the start with a message naming the
bad entry.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from domain.ladder import LADDER, PARENT, Level  # the ladder's home; its names stay importable from here
from schemas.base import DEFAULT_TIMEZONE
from schemas.base import FrozenModel as _Model
from schemas.deadline import DeadlineSpec
from schemas.league import LeaguePolicy

Id = str


class Unit(_Model):
    id: Id = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1, description="Chinese name")
    name_en: str = Field(min_length=1)
    level: Level
    parent: Id | None = None
    households: int | None = Field(default=None, ge=0)
    # Rough centre, used to resolve coordinates to the nearest grid.
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)


class Department(_Model):
    id: Id = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class DutyItem(_Model):
    category: Id
    note: str = ""


class DutyList(_Model):
    """权责清单 of one level."""

    statutory: list[DutyItem] = []  # 依法履职事项: the level's own duties
    assistance: list[DutyItem] = []  # 协助事项: the level assists, a department leads
    negative: list[DutyItem] = []  # 负面事项: must not be pushed down to this level

    def categories(self, kind: str) -> set[Id]:
        return {item.category for item in getattr(self, kind)}


class CategoryAttribute(_Model):
    """An extra field a category asks for at intake (Open311 service definition)."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    description: str
    datatype: str = Field(default="string", pattern=r"^(string|number|datetime|text|singlevaluelist|multivaluelist)$")
    required: bool = False
    values: list[str] = []


class Category(_Model):
    id: Id = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    owning_level: Level
    lead_department: Id
    cooperating_departments: list[Id] = []
    urgent: bool = False
    keywords: list[str] = []
    attributes: list[CategoryAttribute] = []


class LevelPolicy(_Model):
    """Deadlines of one level. `accept` is for departments; `handle` is how long the other
    levels may hold an issue before it is escalated for them."""

    handle: DeadlineSpec | None = None
    accept: DeadlineSpec | None = None
    resolve: DeadlineSpec | None = None
    reminders: list[float] = Field(default=[0.5, 0.8])

    @model_validator(mode="after")
    def _fractions(self) -> "LevelPolicy":
        for f in self.reminders:
            if not 0 < f < 1:
                raise ValueError(f"reminder fraction {f} must be between 0 and 1")
        return self


class Policies(_Model):
    grid: LevelPolicy = LevelPolicy(handle=DeadlineSpec(working_days=1))
    community: LevelPolicy = LevelPolicy(handle=DeadlineSpec(working_days=1))
    area: LevelPolicy = LevelPolicy(handle=DeadlineSpec(working_days=1))
    street: LevelPolicy = LevelPolicy(handle=DeadlineSpec(working_days=1))
    department: LevelPolicy = LevelPolicy(accept=DeadlineSpec(working_days=3), resolve=DeadlineSpec(working_days=6))
    # An urgent whistle: departments must report in within this.
    urgent_accept: DeadlineSpec = DeadlineSpec(duration="PT30M")  # type: ignore[arg-type]
    feedback_window: DeadlineSpec = DeadlineSpec(working_days=3)
    # After a missed resolve deadline: a 督办 to the department and the supervisor this often
    # (by default at the end of each working day) until the department resolves.
    supervision: DeadlineSpec = DeadlineSpec(working_days=1)
    # Dissatisfied feedback reopens the issue this many times; the next goes to supervisor review.
    max_reopens: int = Field(default=2, ge=0)
    evaluation_window: DeadlineSpec = DeadlineSpec(working_days=10)

    @model_validator(mode="after")
    def _complete(self) -> "Policies":
        for level in LADDER:
            if getattr(self, level.value).handle is None:
                raise ValueError(f"policies.{level.value}.handle is required")
        if self.department.accept is None or self.department.resolve is None:
            raise ValueError("policies.department needs accept and resolve")
        return self

    def for_level(self, level: Level) -> LevelPolicy:
        return getattr(self, level.value)


class CalendarOverrides(_Model):
    """Each year's official notice, where the calendar package lacks it or errs."""

    holidays: list[date] = []
    workdays: list[date] = []  # make-up working days (调休) on weekends
    official_years: list[int] = []  # years whose notice these lists complete

    @model_validator(mode="after")
    def _disjoint(self) -> "CalendarOverrides":
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"dates listed both as holidays and as workdays: {', '.join(map(str, both))}")
        return self


class Jurisdiction(_Model):
    id: Id
    name: str
    name_en: str
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    units: list[Unit]
    departments: list[Department]
    duty_lists: dict[Level, DutyList] = {}
    categories: list[Category]
    policies: Policies = Policies()
    calendar: CalendarOverrides = CalendarOverrides()
    league: LeaguePolicy = LeaguePolicy()

    @model_validator(mode="after")
    def _consistent(self) -> "Jurisdiction":
        errors: list[str] = []
        units: dict[Id, Unit] = {}
        for i, unit in enumerate(self.units):
            if unit.id in units:
                errors.append(f"units[{i}]: duplicate unit id {unit.id!r}")
            units[unit.id] = unit
        departments: set[Id] = set()
        for i, dep in enumerate(self.departments):
            if dep.id in departments or dep.id in units:
                errors.append(f"departments[{i}]: duplicate id {dep.id!r}")
            departments.add(dep.id)

        districts = [u for u in self.units if u.level == Level.district]
        if len(districts) != 1:
            errors.append(f"units: exactly one district expected, found {len(districts)}")
        for i, unit in enumerate(self.units):
            where = f"units[{i}] ({unit.id})"
            if unit.level == Level.department:
                errors.append(f"{where}: departments go under 'departments', not 'units'")
            elif unit.level == Level.district:
                if unit.parent is not None:
                    errors.append(f"{where}: the district has no parent")
            elif unit.parent is None:
                errors.append(f"{where}: a {unit.level} needs a parent")
            elif unit.parent not in units:
                errors.append(f"{where}: unknown parent unit {unit.parent!r}")
            elif units[unit.parent].level != PARENT[unit.level]:
                errors.append(
                    f"{where}: parent {unit.parent!r} is a {units[unit.parent].level}, "
                    f"a {unit.level} belongs to a {PARENT[unit.level]}"
                )
        # Cycles (possible only when levels are wrong too, but say it plainly).
        for unit in self.units:
            seen: list[Id] = []
            current: Unit | None = unit
            while current is not None and current.parent is not None:
                if current.id in seen:
                    errors.append(f"units: cycle through {' -> '.join(seen + [current.id])}")
                    break
                seen.append(current.id)
                current = units.get(current.parent)
            else:
                continue
            break

        categories: set[Id] = set()
        for i, cat in enumerate(self.categories):
            where = f"categories[{i}] ({cat.id})"
            if cat.id in categories:
                errors.append(f"{where}: duplicate category id {cat.id!r}")
            categories.add(cat.id)
            for dep in [cat.lead_department, *cat.cooperating_departments]:
                if dep not in departments:
                    errors.append(f"{where}: routed to missing department {dep!r}")
            if cat.lead_department in cat.cooperating_departments:
                errors.append(f"{where}: lead department {cat.lead_department!r} is also cooperating")
            if cat.owning_level == Level.district:
                errors.append(f"{where}: owning_level must be a ladder level or department")

        for level, duties in self.duty_lists.items():
            if level not in LADDER:
                errors.append(f"duty_lists.{level}: duty lists are for grid, community, area or street")
            for kind in ("statutory", "assistance", "negative"):
                for j, item in enumerate(getattr(duties, kind)):
                    if item.category not in categories:
                        errors.append(f"duty_lists.{level}.{kind}[{j}]: unknown category {item.category!r}")
            overlap = duties.categories("statutory") & duties.categories("negative")
            for cat_id in sorted(overlap):
                errors.append(f"duty_lists.{level}: {cat_id!r} is both statutory and on the negative list")
        if errors:
            raise ValueError("\n  ".join(errors))
        return self

    # Look-ups -------------------------------------------------------------------------------
    def unit(self, unit_id: Id) -> Unit:
        for u in self.units:
            if u.id == unit_id:
                return u
        raise KeyError(unit_id)

    def category(self, category_id: Id) -> Category:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(category_id)

    def department(self, department_id: Id) -> Department:
        for d in self.departments:
            if d.id == department_id:
                return d
        raise KeyError(department_id)

    def chain(self, grid_id: Id) -> dict[Level, Id]:
        """The grid's ancestors by level: grid, community, area, street, district."""
        out: dict[Level, Id] = {}
        unit: Unit | None = self.unit(grid_id)
        while unit is not None:
            out[unit.level] = unit.id
            unit = self.unit(unit.parent) if unit.parent else None
        return out

    def is_duty(self, level: Level, category_id: Id, kind: str = "statutory") -> bool:
        duties = self.duty_lists.get(level)
        return duties is not None and category_id in duties.categories(kind)
