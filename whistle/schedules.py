"""The quarterly Schedule and the monthly briefing's: created or updated idempotently; past
quarters can be backfilled."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
)

from schemas.base import DEFAULT_TIMEZONE
from schemas.period import parse_period, period_bounds

SCHEDULE_ID = "whistle-quarterly"
FIRE_HOUR = 9  # 09:00 in the jurisdiction's time zone on the first day of each quarter


def quarterly_schedule(task_queue: str, time_zone: str = DEFAULT_TIMEZONE) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow("QuarterlyWorkflow", id="whistle-quarterly", task_queue=task_queue),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(
                month=(ScheduleRange(1), ScheduleRange(4), ScheduleRange(7), ScheduleRange(10)),
                day_of_month=(ScheduleRange(1),), hour=(ScheduleRange(FIRE_HOUR),),
                minute=(ScheduleRange(0),), second=(ScheduleRange(0),),
                comment="each quarter: reverse evaluation of the quarter just ended, then its red/black list",
            )],
            time_zone_name=time_zone,
        ),
        # One quarter at a time: a late run waits, none is dropped.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE, catchup_window=timedelta(days=30)),
    )


BRIEFING_SCHEDULE_ID = "whistle-monthly-briefing"
BRIEFING_FIRE_HOUR = 8  # 08:00 in the jurisdiction's time zone on the first day of each month


def monthly_briefing_schedule(task_queue: str, time_zone: str = DEFAULT_TIMEZONE) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow("MonthlyBriefingWorkflow", id=BRIEFING_SCHEDULE_ID, task_queue=task_queue),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(
                day_of_month=[ScheduleRange(1)], hour=[ScheduleRange(BRIEFING_FIRE_HOUR)],
                minute=[ScheduleRange(0)], second=[ScheduleRange(0)],
                comment="each month: the monthly briefing (月度通报) of the month just ended",
            )],
            time_zone_name=time_zone,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE, catchup_window=timedelta(days=7)),
    )


async def _apply(client: Client, schedule_id: str, schedule: Schedule) -> str:
    try:
        await client.create_schedule(schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id)
        if same_definition((await handle.describe()).schedule, schedule):
            return "unchanged"
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))
        return "updated"


async def apply_schedules(client: Client, task_queue: str, time_zone: str = DEFAULT_TIMEZONE) -> dict[str, str]:
    """Create the schedules, or bring existing ones to these definitions, firing in the
    jurisdiction's `time_zone`. Returns what it did to each, by schedule id: created, updated,
    or unchanged."""
    return {
        SCHEDULE_ID: await _apply(client, SCHEDULE_ID, quarterly_schedule(task_queue, time_zone)),
        BRIEFING_SCHEDULE_ID: await _apply(client, BRIEFING_SCHEDULE_ID, monthly_briefing_schedule(task_queue, time_zone)),
    }


def _as_described(value: Any) -> Any:
    """A definition's parts with every sequence a tuple, all the way down, as the server's
    description hands them back: a spec written with lists is the same spec."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _as_described(getattr(value, f.name))
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):  # a list, a tuple, protobuf's repeated field
        return tuple(_as_described(v) for v in value)
    return value


def same_definition(current: Schedule, wanted: Schedule) -> bool:
    """Whether a schedule on the server already has this definition (its paused state is the
    operators' and is left alone)."""
    a, b = current.action, wanted.action
    return (
        _as_described(current.spec) == _as_described(wanted.spec)
        and _as_described(current.policy) == _as_described(wanted.policy)
        and isinstance(a, ScheduleActionStartWorkflow) and isinstance(b, ScheduleActionStartWorkflow)
        and (a.workflow, a.id, a.task_queue, len(a.args)) == (b.workflow, b.id, b.task_queue, len(b.args))
    )


def fire_time(quarter: str, time_zone: str = DEFAULT_TIMEZONE) -> datetime:
    """When the schedule fires for a quarter: 09:00 on the first day of the next quarter."""
    _, end = period_bounds(quarter, time_zone)
    return datetime.combine(end.date(), time(FIRE_HOUR), ZoneInfo(time_zone))


def quarter_range(first: str, last: str) -> list[str]:
    (y, q), (y2, q2) = parse_period(first), parse_period(last)
    if q is None or q2 is None:
        raise ValueError("give quarters like 2026Q1")
    out = []
    while (y, q) <= (y2, q2):
        out.append(f"{y}Q{q}")
        y, q = (y + 1, 1) if q == 4 else (y, q + 1)
    if not out:
        raise ValueError(f"{first} is after {last}")
    return out


def refuse_unended(quarters: list[str], time_zone: str = DEFAULT_TIMEZONE, now: datetime | None = None) -> None:
    """Only a quarter that has ended can be run: its evaluation round rates what it held. A
    quarter still running (or to come) is refused, saying when the schedule runs it."""
    now = now or datetime.now(ZoneInfo(time_zone))
    for quarter in quarters:
        _, end = period_bounds(quarter, time_zone)
        if end > now:
            raise ValueError(
                f"{quarter} has not ended (it ends {end:%Y-%m-%d %H:%M} {time_zone}): backfill runs only quarters that "
                f"have ended; the quarterly schedule starts its round at {fire_time(quarter, time_zone):%Y-%m-%d %H:%M}"
            )


async def backfill(client: Client, first: str, last: str, now: datetime | None = None) -> list[str]:
    """Run the quarterly workflows for the quarters from `first` to `last`, all of which must
    have ended by `now` (default: now)."""
    quarters = quarter_range(first, last)
    handle = client.get_schedule_handle(SCHEDULE_ID)
    tz = (await handle.describe()).schedule.spec.time_zone_name or DEFAULT_TIMEZONE  # as it was applied
    refuse_unended(quarters, tz, now)
    await handle.backfill(*[
        ScheduleBackfill(start_at=fire_time(q, tz) - timedelta(seconds=1), end_at=fire_time(q, tz) + timedelta(seconds=1),
                         overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        for q in quarters
    ])
    return quarters
