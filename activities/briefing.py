"""Activities of the monthly briefing (月度通报): compute it in SQL and store it (a retry
writes the same row again), and mark it announced."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.briefing import TOP, Briefing, CategoryCount, HotSpot, MonthRequest, UnitFigures, month_bounds
from schemas.jurisdiction import Jurisdiction
from whistle.db import queries


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def figures(kind: str, record: asyncpg.Record) -> UnitFigures:
    resolved = record["resolved_on_time"] + record["resolved_late"]
    return UnitFigures(
        unit_kind=kind, **dict(record),
        completion_rate=_ratio(resolved, record["dispatched"]),
        on_time_rate=_ratio(record["resolved_on_time"], resolved),
        dissatisfied_rate=_ratio(record["dissatisfied"], record["answered"]),
    )


async def compute(conn, month: str, tz: str) -> tuple:
    start, end = month_bounds(month, tz)
    return (
        await conn.fetchval(queries.BRIEFING_ISSUES, start, end),
        [figures("department", r) for r in await conn.fetch(queries.BRIEFING_DEPARTMENTS, start, end)],
        [figures("street", r) for r in await conn.fetch(queries.BRIEFING_STREETS, start, end)],
        [CategoryCount(**dict(r)) for r in await conn.fetch(queries.BRIEFING_TOP_CATEGORIES, start, end, TOP)],
        [HotSpot(**dict(r)) for r in await conn.fetch(queries.BRIEFING_HOT_SPOTS, start, end, TOP)],
    )


class BriefingActivities:
    def __init__(self, jurisdiction: Jurisdiction, pool: asyncpg.Pool):
        self.jurisdiction = jurisdiction
        self.pool = pool

    @activity.defn
    async def compute_briefing(self, request: MonthRequest) -> Briefing:
        now = activity.info().current_attempt_scheduled_time
        async with self.pool.acquire() as conn, conn.transaction():
            issues, departments, streets, categories, hot_spots = await compute(conn, request.month, self.jurisdiction.timezone)
            briefing = Briefing(month=request.month, issues=issues, departments=departments, streets=streets,
                                top_categories=categories, hot_spots=hot_spots, computed_at=now)
            await conn.execute(queries.UPSERT_BRIEFING, request.month, briefing.model_dump(mode="json"), now)
        return briefing

    @activity.defn
    async def mark_briefing_announced(self, request: MonthRequest) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(queries.MARK_BRIEFING_ANNOUNCED, request.month, activity.info().current_attempt_scheduled_time)

    def all(self) -> list:
        return [self.compute_briefing, self.mark_briefing_announced]
