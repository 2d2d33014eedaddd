"""China's working-day calendar (Asia/Shanghai): holidays, make-up working days (调休), the
fallback for years without an official notice, jurisdiction overrides, exact durations."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from schemas.deadline import DeadlineSpec
from schemas.jurisdiction import CalendarOverrides
from whistle.workdays import WorkingCalendar

SH = ZoneInfo("Asia/Shanghai")


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def no_data_warnings(logs: list[dict]) -> list[dict]:
    return [e for e in logs if e["event"] == "calendar.no_official_data"]


@pytest.fixture
def cal(demo) -> WorkingCalendar:
    return WorkingCalendar(demo.calendar)


# 2026 National Day: Oct 1-7 off; Sunday Sep 20 and Saturday Oct 10 are make-up working days.


@pytest.mark.parametrize("day", [date(2026, 10, d) for d in range(1, 8)])
def test_national_day_2026_is_off(cal, day):
    assert not cal.is_working_day(day)


@pytest.mark.parametrize("day", [date(2026, 9, 20), date(2026, 10, 10)])
def test_make_up_weekend_days_2026_are_working(cal, day):
    assert day.weekday() >= 5
    assert cal.is_working_day(day)


def test_ordinary_weekend_is_off(cal):
    assert not cal.is_working_day(date(2026, 10, 11))  # Sunday after the make-up Saturday
    assert not cal.is_working_day(date(2026, 3, 14))  # plain Saturday
    assert cal.is_working_day(date(2026, 3, 13))  # plain Friday


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        # Oct 8, Oct 9 and the make-up Saturday Oct 10 count.
        (at(2026, 9, 30, 10), 3, at(2026, 10, 11)),
        # Friday Oct 9, 1 WD: the make-up Saturday is the next working day.
        (at(2026, 10, 9, 10), 1, at(2026, 10, 11)),
        # Saturday Sep 19, 1 WD: the make-up Sunday Sep 20.
        (at(2026, 9, 19, 10), 1, at(2026, 9, 21)),
        # Received on Oct 1 (a holiday): Oct 8 is the first working day.
        (at(2026, 10, 1, 9), 1, at(2026, 10, 9)),
        # An ordinary week: Monday 10:00 + 3 -> end of Thursday (Friday 00:00).
        (at(2026, 3, 9, 10), 3, at(2026, 3, 13)),
        # Monday 01:00 Shanghai given in UTC (Sunday 17:00): the local day counts.
        (datetime(2026, 3, 8, 17, 0, tzinfo=timezone.utc), 3, at(2026, 3, 13)),
        # Friday 23:59 + 1 -> end of Monday.
        (at(2026, 3, 13, 23, 59), 1, at(2026, 3, 17)),
    ],
)
def test_add_working_days(cal, start, n, expected):
    result = cal.add_working_days(start, n)
    assert result == expected
    assert result.utcoffset() == timedelta(hours=8)


def test_deadline_with_working_days_spec(cal):
    assert cal.deadline(at(2026, 9, 30, 10), DeadlineSpec(working_days=3)) == at(2026, 10, 11)


# A year without an official notice --------------------------------------------------------


def test_crossing_into_a_year_without_notice_uses_fallback_and_warns():
    cal = WorkingCalendar()  # fresh: its per-year cache and warnings are unspent
    assert cal.is_official(2026)
    assert not cal.is_official(2027)
    with capture_logs() as logs:
        # Dec 31, Jan 1 is New Year's Day, Jan 2-3 weekend, Jan 4, Jan 5.
        result = cal.add_working_days(at(2026, 12, 30, 10), 3)
    assert result == at(2027, 1, 6)
    warnings = no_data_warnings(logs)
    assert [w["year"] for w in warnings] == [2027]
    assert warnings[0]["log_level"] == "warning"


def test_no_official_data_warning_is_logged_once_per_year():
    cal = WorkingCalendar()
    with capture_logs() as logs:
        cal.add_working_days(at(2027, 3, 1, 10), 3)
        cal.add_working_days(at(2027, 6, 1, 10), 3)
        cal.is_working_day(date(2027, 12, 1))
    assert [w["year"] for w in no_data_warnings(logs)] == [2027]


def test_official_year_logs_no_warning():
    cal = WorkingCalendar()
    with capture_logs() as logs:
        cal.add_working_days(at(2026, 9, 30, 10), 3)
    assert no_data_warnings(logs) == []


# Jurisdiction overrides ---------------------------------------------------------------------

EXTRA_HOLIDAY = date(2027, 3, 10)  # a Wednesday
EXTRA_WORKDAY = date(2027, 3, 13)  # a Saturday
OVERRIDES = CalendarOverrides(holidays=[EXTRA_HOLIDAY], workdays=[EXTRA_WORKDAY], official_years=[2027])


def test_overrides_change_working_days():
    plain, overridden = WorkingCalendar(), WorkingCalendar(OVERRIDES)
    assert EXTRA_HOLIDAY.weekday() == 2 and EXTRA_WORKDAY.weekday() == 5
    assert plain.is_working_day(EXTRA_HOLIDAY) and not overridden.is_working_day(EXTRA_HOLIDAY)
    assert not plain.is_working_day(EXTRA_WORKDAY) and overridden.is_working_day(EXTRA_WORKDAY)


def test_overrides_change_the_deadline():
    start = at(2027, 3, 9, 10)  # Tuesday
    # Without overrides: Wed 10, Thu 11, Fri 12.
    assert WorkingCalendar().add_working_days(start, 3) == at(2027, 3, 13)
    # With them: Wed 10 is off, so Thu 11, Fri 12 and the make-up Saturday 13.
    assert WorkingCalendar(OVERRIDES).add_working_days(start, 3) == at(2027, 3, 14)


def test_official_years_override_suppresses_the_warning():
    with capture_logs() as logs:
        WorkingCalendar().add_working_days(at(2027, 3, 9, 10), 3)
    assert len(no_data_warnings(logs)) == 1
    with capture_logs() as logs:
        cal = WorkingCalendar(OVERRIDES)
        assert cal.is_official(2027)
        cal.add_working_days(at(2027, 3, 9, 10), 3)
    assert no_data_warnings(logs) == []


# Exact durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "delta"),
    [
        ("PT30M", timedelta(minutes=30)),
        ("PT3S", timedelta(seconds=3)),
        ("P1DT2H", timedelta(days=1, hours=2)),
    ],
)
def test_exact_durations_ignore_holidays(cal, spec, delta):
    start = at(2026, 10, 1, 10)  # National Day
    assert not cal.is_working_day(start.date())
    assert cal.deadline(start, DeadlineSpec.model_validate(spec)) == start + delta


# Bad input ----------------------------------------------------------------------------------


def test_naive_start_is_refused(cal):
    naive = datetime(2026, 3, 9, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add_working_days(naive, 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.deadline(naive, DeadlineSpec(working_days=3))


def test_zero_working_days_is_refused(cal):
    with pytest.raises(ValueError):
        cal.add_working_days(at(2026, 3, 9, 10), 0)


@pytest.mark.parametrize(
    "deadline, extend_by, expected",
    [
        # Wednesday 2026-12-02 24:00 + 2WD: Thursday and Friday → Friday 24:00 (not Monday's).
        ("2026-12-03T00:00:00+08:00", 2, "2026-12-05T00:00:00+08:00"),
        # Friday 24:00 + 1WD crosses the weekend: Monday 24:00.
        ("2026-12-05T00:00:00+08:00", 1, "2026-12-08T00:00:00+08:00"),
        # Across National Day 2026 (Oct 1-7 off, the 4th a Sunday): Sep 30 24:00 + 1WD → Oct 8 24:00.
        ("2026-10-01T00:00:00+08:00", 1, "2026-10-09T00:00:00+08:00"),
        # A deadline not at midnight counts from its own day.
        ("2026-12-02T15:00:00+08:00", 2, "2026-12-05T00:00:00+08:00"),
    ],
)
def test_an_extension_counts_from_the_deadline_s_own_day(deadline, extend_by, expected):
    from datetime import datetime

    from schemas.deadline import DeadlineSpec
    from whistle.workdays import WorkingCalendar

    got = WorkingCalendar().extend(datetime.fromisoformat(deadline), DeadlineSpec(working_days=extend_by))
    assert got == datetime.fromisoformat(expected)
