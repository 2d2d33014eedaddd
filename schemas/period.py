"""Quarters and years: "2026Q3", "2026"; bounds in the jurisdiction's time zone."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from schemas.base import DEFAULT_TIMEZONE

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
PERIOD_PATTERN = r"^\d{4}(Q[1-4])?$"


def parse_period(period: str) -> tuple[int, int | None]:
    if m := _QUARTER.match(period):
        return int(m.group(1)), int(m.group(2))
    if m := _YEAR.match(period):
        return int(m.group(1)), None
    raise ValueError(f"period {period!r} is neither YYYYQn nor YYYY")


def period_bounds(period: str, tz: str = DEFAULT_TIMEZONE) -> tuple[datetime, datetime]:
    """[start, end) of the quarter or year, as aware datetimes."""
    year, quarter = parse_period(period)
    zone = ZoneInfo(tz)
    if quarter is None:
        start, end = date(year, 1, 1), date(year + 1, 1, 1)
    else:
        start = date(year, 3 * quarter - 2, 1)
        end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return datetime.combine(start, time(0), zone), datetime.combine(end, time(0), zone)


def quarter_of(moment: datetime, tz: str = DEFAULT_TIMEZONE) -> str:
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


def is_quarter(period: str) -> bool:
    return _QUARTER.match(period) is not None


def previous_quarter(period: str) -> str:
    year, quarter = parse_period(period)
    assert quarter is not None
    return f"{year - 1}Q4" if quarter == 1 else f"{year}Q{quarter - 1}"


def next_quarter(period: str) -> str:
    year, quarter = parse_period(period)
    assert quarter is not None
    return f"{year + 1}Q1" if quarter == 4 else f"{year}Q{quarter + 1}"


def quarters_of_year(year: int) -> list[str]:
    return [f"{year}Q{q}" for q in range(1, 5)]
