"""China's working-day calendar: weekends, public holidays and make-up working days (调休).

Official data comes from the maintained `holidays` package (its China calendar lists each
year's State Council notice, with make-up working days, as `weekend_workdays`). The
jurisdiction's `calendar` section adds or overrides days for years the package lacks or gets
wrong. For a year with no official notice the documented fallback rule applies: weekends plus
the statutory holidays as `holidays` computes them, no make-up days; a warning is logged once
per year. A deadline therefore always computes.

Deadlines are computed in an activity and recorded in workflow history, never recomputed on
replay: a calendar update cannot change a running workflow.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import structlog
from holidays.countries.china import ChinaStaticHolidays

from schemas.base import DEFAULT_TIMEZONE
from schemas.deadline import DeadlineSpec
from schemas.jurisdiction import CalendarOverrides

log = structlog.get_logger(__name__)

# Years for which the package carries the State Council's notice (its make-up day table).
PACKAGE_OFFICIAL_YEARS = frozenset(ChinaStaticHolidays.special_public_holidays)


class WorkingCalendar:
    def __init__(self, overrides: CalendarOverrides | None = None, tz: str = DEFAULT_TIMEZONE):
        self.overrides = overrides or CalendarOverrides()
        self.tz = ZoneInfo(tz)
        self._extra_holidays = frozenset(self.overrides.holidays)
        self._extra_workdays = frozenset(self.overrides.workdays)
        self._official = PACKAGE_OFFICIAL_YEARS | frozenset(self.overrides.official_years)
        self._warned: set[int] = set()
        self._years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}

    def is_official(self, year: int) -> bool:
        return year in self._official

    def _year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        """(holidays, make-up workdays) of one year."""
        if year in self._years:
            return self._years[year]
        cn = holidays.China(years=year)
        days_off = frozenset(cn.keys())
        workdays = frozenset(d for d in cn.weekend_workdays if d.year == year)
        if not self.is_official(year) and year not in self._warned:
            self._warned.add(year)
            log.warning(
                "calendar.no_official_data",
                year=year,
                rule="weekends and statutory holidays, no make-up working days",
                hint="add the year's notice under calendar: in the jurisdiction file",
            )
        self._years[year] = (days_off, workdays)
        return days_off, workdays

    def is_working_day(self, day: date) -> bool:
        if day in self._extra_workdays:
            return True
        if day in self._extra_holidays:
            return False
        days_off, workdays = self._year(day.year)
        if day in workdays:
            return True
        if day in days_off:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """End (24:00 local) of the n-th working day after the day of `start`.

        Received on Monday at 10:00, 3 working days → Thursday 24:00 (Friday 00:00), when
        Tuesday to Thursday are working days. The day of receipt never counts.
        """
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if n < 1:
            raise ValueError("n must be at least 1")
        day = start.astimezone(self.tz).date()
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz)

    def extend(self, deadline: datetime, spec: DeadlineSpec) -> datetime:
        """A deadline moved by `spec`: N working days counted from the deadline's own day.

        A working-day deadline is 24:00, i.e. 00:00 of the next day; counted from that instant
        the next day would be "the day of receipt" and one working day too many would be added
        (+2WD on a deadline of Wednesday 24:00 must give Friday 24:00, not Monday 24:00).
        So count from the instant before it."""
        if spec.working_days is not None:
            return self.add_working_days(deadline - timedelta(microseconds=1), spec.working_days)
        return self.deadline(deadline, spec)

    def deadline(self, start: datetime, spec: DeadlineSpec) -> datetime:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if spec.working_days is not None:
            return self.add_working_days(start, spec.working_days)
        assert spec.duration is not None
        return start + spec.duration

