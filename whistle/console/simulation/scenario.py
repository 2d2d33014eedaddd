"""The simulated quarter, drawn from a seed: when issues arrive, of what category and where,
and how each department behaves. Pure: the same seed and jurisdiction give the same scenario.

The shape follows the source articles and 12345 practice: calls peak mid-morning and
mid-afternoon and go on at night; weekends bring fewer; heating dominates winter and drainage
the rainy summer; most small matters end at the grid or community, the rest are dispatched; a
few departments are slow to report in and to finish, and pass work down.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.intake import Channel
from schemas.jurisdiction import Jurisdiction, Level
from schemas.period import period_bounds
from whistle.workdays import WorkingCalendar

STEP = timedelta(hours=1)  # the simulation's clock moves in whole hours
OFFICE_STEPS = 9  # office hours a working day: 09:00–18:00

# Share of calls by hour of day (local time), 0..23.
HOURLY = (2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 18, 16, 10, 11, 16, 17, 16, 14, 11, 10, 9, 7, 5, 3)
CHANNELS = {Channel.hotline: 62, Channel.wechat: 14, Channel.qr: 8, Channel.patrol: 12, Channel.walkin: 4}

# Relative volume by category; categories not named weigh 3.
VOLUME = {
    "property-management": 14, "noise": 10, "parking": 9, "garbage-collection": 8, "illegal-construction": 6,
    "heating": 8, "neighbour-dispute": 6, "corridor-clutter": 5, "street-vending": 5, "restaurant-fumes": 4,
    "pet-nuisance": 4, "shared-bikes": 4, "drainage-flooding": 3, "broken-streetlight": 4, "sidewalk-damage": 3,
}
# Season by quarter: heating in winter, drainage in the rainy season, fumes and noise in summer.
SEASON = {
    "heating": {1: 4.0, 2: 0.3, 3: 0.1, 4: 3.0},
    "drainage-flooding": {1: 0.3, 2: 1.2, 3: 4.0, 4: 0.5},
    "restaurant-fumes": {2: 1.5, 3: 1.8},
    "noise": {3: 1.4},
}
# Small matters that a grid worker or the community usually settles on the spot.
ON_THE_SPOT = {"corridor-clutter", "neighbour-dispute", "pet-nuisance", "shared-bikes", "ev-flying-wire",
               "illegal-advertising", "garbage-collection", "property-management"}


@dataclass(frozen=True)
class DepartmentProfile:
    """How a department behaves: `kind` is prompt, ordinary or slow."""

    id: str
    kind: str
    accept_hours: tuple[int, int]  # office hours to report in, when it does in time
    late_accept: float  # chance it lets the report-in deadline pass
    resolve_days: tuple[int, int]  # working days to finish, when it does in time
    late_resolve: float  # chance it finishes after the deadline
    decline: float  # "not our duty"
    extension: float  # asks the supervisor for more time
    quality: float  # how residents and communities find the work (0..1)
    pushes_down: float  # chance a community reports it pushed work down to them


_KINDS: dict[str, dict[str, Any]] = {
    "prompt": {"accept_hours": (1, 6), "late_accept": 0.0, "resolve_days": (1, 3), "late_resolve": 0.02,
               "decline": 0.02, "extension": 0.03, "quality": 0.92, "pushes_down": 0.0},
    "ordinary": {"accept_hours": (2, 14), "late_accept": 0.04, "resolve_days": (2, 5), "late_resolve": 0.08,
                 "decline": 0.05, "extension": 0.08, "quality": 0.8, "pushes_down": 0.03},
    "slow": {"accept_hours": (8, 22), "late_accept": 0.35, "resolve_days": (4, 6), "late_resolve": 0.4,
             "decline": 0.12, "extension": 0.15, "quality": 0.55, "pushes_down": 0.3},
}


@dataclass(frozen=True)
class IssuePlan:
    index: int
    reference: str
    channel: Channel
    category: str
    grid_id: str
    reported_at: datetime  # the resident's call
    arrival: datetime  # the work order's submission: at once in office hours, else in the next batch
    seed: str  # the issue's own random stream: its draws do not depend on other issues


@dataclass(frozen=True)
class Scenario:
    quarter: str
    seed: int
    start: datetime
    end: datetime
    issues: list[IssuePlan]
    departments: dict[str, DepartmentProfile]

    def slow(self) -> list[str]:
        return [d.id for d in self.departments.values() if d.kind == "slow"]

    def prompt(self) -> list[str]:
        return [d.id for d in self.departments.values() if d.kind == "prompt"]


def build_scenario(j: Jurisdiction, quarter: str, issues: int, seed: int, calendar: WorkingCalendar) -> Scenario:
    rng = random.Random(f"whistle-simulate:{seed}")
    start, end = period_bounds(quarter, j.timezone)
    zone = ZoneInfo(j.timezone)
    q = int(quarter[-1])

    departments = sorted(d.id for d in j.departments)
    kinds = ["slow", "slow", "prompt", "prompt"] + ["ordinary"] * max(0, len(departments) - 4)
    rng.shuffle(kinds)
    profiles = {d: DepartmentProfile(id=d, kind=k, **_KINDS[k]) for d, k in zip(departments, kinds)}

    categories = sorted(c.id for c in j.categories)
    cat_weights = [VOLUME.get(c, 3) * SEASON.get(c, {}).get(q, 1.0) for c in categories]
    grids = sorted((u for u in j.units if u.level == Level.grid), key=lambda u: u.id)
    grid_weights = [u.households or 400 for u in grids]
    channels, channel_weights = list(CHANNELS), list(CHANNELS.values())

    # Every hour of the quarter but midnight (deadlines fall due then), weighted by hour and by
    # whether the day is a working day.
    slots: list[datetime] = []
    weights: list[float] = []
    day = start.astimezone(zone).date()
    while datetime.combine(day, time(0), zone) < end:
        day_weight = 1.0 if calendar.is_working_day(day) else 0.6
        for hour in range(1, 24):
            at = datetime.combine(day, time(hour), zone)
            slots.append(at)
            weights.append(day_weight * HOURLY[at.hour])
        day += timedelta(days=1)

    arrivals = sorted(rng.choices(slots, weights, k=issues))
    plans = []
    for i, at in enumerate(arrivals):
        channel = rng.choices(channels, channel_weights)[0]
        plans.append(IssuePlan(
            index=i,
            reference=f"SIM{seed}-{quarter}-{i:05d}",
            channel=channel,
            category=rng.choices(categories, cat_weights)[0],
            grid_id=rng.choices(grids, grid_weights)[0].id,
            reported_at=at,
            arrival=_submitted(at, calendar.is_working_day(at.date())),
            seed=f"{seed}:{i}",
        ))
    return Scenario(quarter=quarter, seed=seed, start=start, end=end, issues=plans, departments=profiles)


# Hours at which calls taken outside office hours are submitted, as a batch, the same day.
BATCHES = {True: (8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 23), False: (8, 12, 17, 23)}


def _submitted(reported: datetime, working_day: bool) -> datetime:
    hour = next(h for h in BATCHES[working_day] if h >= reported.hour)
    return reported.replace(hour=hour)


class OfficeHours:
    """Times when staff act: on the hour, 09:00–18:00 on working days."""

    OPEN, CLOSE = time(9), time(18)

    def __init__(self, calendar: WorkingCalendar, tz: str):
        self.calendar = calendar
        self.zone = ZoneInfo(tz)

    def _open(self, day: date) -> bool:
        return self.calendar.is_working_day(day)

    def next_open(self, t: datetime) -> datetime:
        """`t` itself if the office is open then, else the next opening."""
        local = t.astimezone(self.zone)
        if self._open(local.date()) and self.OPEN <= local.time() < self.CLOSE:
            return local
        day = local.date() if local.time() < self.OPEN else local.date() + timedelta(days=1)
        while not self._open(day):
            day += timedelta(days=1)
        return datetime.combine(day, self.OPEN, self.zone)

    def after(self, t: datetime, hours: int) -> datetime:
        """`hours` office hours after `t` (0: at once, if open)."""
        at = self.next_open(t)
        for _ in range(hours):
            at = self.next_open(at + STEP)
        return at

    def next_day(self, t: datetime, rng: random.Random, latest: int = 3) -> datetime:
        """Some time during the next working day."""
        local = t.astimezone(self.zone)
        day = local.date() + timedelta(days=1)
        while not self._open(day):
            day += timedelta(days=1)
        return self.after(datetime.combine(day, self.OPEN, self.zone), rng.randint(0, latest))

    def days_before(self, deadline: datetime, days: int) -> datetime:
        """Office time `days` working days before `deadline` (which falls at midnight)."""
        day = (deadline.astimezone(self.zone) - timedelta(minutes=1)).date()
        counted = 0
        while counted < days:
            if self._open(day):
                counted += 1
            if counted < days:
                day -= timedelta(days=1)
        while not self._open(day):
            day -= timedelta(days=1)
        return datetime.combine(day, time(10, 0), self.zone)
