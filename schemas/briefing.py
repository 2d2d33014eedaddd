"""The monthly briefing (月度通报) that 12345 centres publish: per department and per street,
how the month's dispatched issues went; the month's top categories and hot spots."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from schemas.base import DEFAULT_TIMEZONE
from schemas.base import Model as _Model

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
REPEAT_WINDOW_DAYS = 30  # the same category at the same grid again within this many days
TOP = 5  # categories and hot spots shown


def month_bounds(month: str, tz: str = DEFAULT_TIMEZONE) -> tuple[datetime, datetime]:
    """[start, end) of a month `YYYY-MM` in the jurisdiction's time zone."""
    year, m = int(month[:4]), int(month[5:7])
    zone = ZoneInfo(tz)
    start = datetime(year, m, 1, tzinfo=zone)
    end = datetime(year + (m == 12), m % 12 + 1, 1, tzinfo=zone)
    return start, end


def month_of(at: datetime, tz: str = DEFAULT_TIMEZONE) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m")


def previous_month(month: str) -> str:
    year, m = int(month[:4]), int(month[5:7])
    return f"{year - (m == 1)}-{(m - 2) % 12 + 1:02d}"


class BriefingInput(_Model):
    month: str | None = Field(default=None, pattern=MONTH_PATTERN)  # default: the month before the run


class MonthRequest(_Model):
    month: str = Field(pattern=MONTH_PATTERN)


class UnitFigures(_Model):
    """One department's or street's month. Rates are numerator ÷ denominator (None when 0)."""

    unit_id: str
    unit_kind: Literal["department", "street"]
    name: str
    dispatched: int
    resolved_on_time: int
    resolved_late: int
    still_open: int
    completion_rate: float | None  # (on time + late) ÷ dispatched
    on_time_rate: float | None  # on time ÷ (on time + late)
    answered: int  # issues with a resident's answer by the month's end
    dissatisfied: int
    dissatisfied_rate: float | None  # dissatisfied ÷ answered
    repeat_complaints: int


class CategoryCount(_Model):
    category: str
    name: str
    issues: int


class HotSpot(_Model):
    grid_id: str
    name: str
    community: str
    issues: int


class Briefing(_Model):
    month: str
    issues: int  # created in the month
    departments: list[UnitFigures]
    streets: list[UnitFigures]
    top_categories: list[CategoryCount]
    hot_spots: list[HotSpot]
    computed_at: datetime
    announced_at: datetime | None = None
