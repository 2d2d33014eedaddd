"""Activities of the quarterly workflows: evaluation rounds, ratings, league tables. Each is
idempotent: rounds and targets insert once, ratings upsert, publication only moves forward."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import httpx
from temporalio import activity

from schemas.evaluation import CommunityTargets, RatingRecord, RoundRequest
from domain.league import changes, rank, rates_of
from schemas.league import Announcement, ComputeRequest, LeaguePolicy, LeagueRow, LeagueTable, PeriodRequest
from schemas.deadline import DeadlineSpec
from schemas.jurisdiction import Jurisdiction
from schemas.period import parse_period, period_bounds, quarters_of_year
from whistle.db import queries


class QuarterlyActivities:
    def __init__(self, jurisdiction: Jurisdiction, pool: asyncpg.Pool):
        self.jurisdiction = jurisdiction
        self.pool = pool

    @activity.defn
    async def evaluation_window(self) -> DeadlineSpec:
        return self.jurisdiction.policies.evaluation_window

    @activity.defn
    async def league_policy(self) -> LeaguePolicy:
        return self.jurisdiction.league

    @activity.defn
    async def open_round(self, request: RoundRequest) -> list[CommunityTargets]:
        """Record the round and who rates whom; a retry finds both there."""
        start, end = period_bounds(request.quarter, self.jurisdiction.timezone)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.UPSERT_ROUND, request.quarter, request.opened_at, request.closes_at)
            existing = await conn.fetch(queries.SELECT_TARGETS, request.quarter)
            if not existing:
                rows = await conn.fetch(queries.EVALUATION_TARGETS, start, end)
                await conn.executemany(
                    queries.INSERT_TARGET,
                    [(request.quarter, r["community_id"], t) for r in rows for t in r["targets"]],
                )
                existing = await conn.fetch(queries.SELECT_TARGETS, request.quarter)
        return [CommunityTargets(community_id=r["community_id"], targets=list(r["targets"])) for r in existing]

    @activity.defn
    async def record_rating(self, rating: RatingRecord) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                queries.UPSERT_RATING, rating.quarter, rating.community_id, rating.target_id, rating.responsiveness,
                rating.quality, rating.attitude, rating.pushed_down, rating.evidence, rating.rated_at,
            )

    @activity.defn
    async def close_round(self, request: RoundRequest) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(queries.CLOSE_ROUND, request.quarter, request.closes_at)

    @activity.defn
    async def rounds_closed(self, request: PeriodRequest) -> bool:
        """Whether every evaluation round the period needs has closed."""
        year, quarter = parse_period(request.period)
        quarters = [request.period] if quarter else quarters_of_year(year)
        async with self.pool.acquire() as conn:
            return await conn.fetchval(queries.CLOSED_ROUNDS, quarters) == len(quarters)

    @activity.defn
    async def compute_league(self, request: ComputeRequest) -> LeagueTable:
        """Metrics in SQL (with the supervisor's adjustments), then intervals, ranks and lists;
        the draft replaces any earlier draft and says what changed against it."""
        start, end = period_bounds(request.period, self.jurisdiction.timezone)
        year, quarter = parse_period(request.period)
        quarters = [request.period] if quarter else quarters_of_year(year)
        now = activity.info().current_attempt_scheduled_time
        adjustments = [a.model_dump(mode="json", exclude={"by", "draft", "at", "reason"}, exclude_none=True)
                       for a in request.adjustments]
        rows: list[LeagueRow] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for kind, sql in (("department", queries.LEAGUE_DEPARTMENTS), ("street", queries.LEAGUE_STREETS)):
                found = await conn.fetch(sql, start, end, quarters, request.weights, adjustments)
                rows += rank([row_of(kind, r) for r in found], request)
            changed = changes(request.previous, rows) if request.previous is not None else []
            await conn.execute(queries.DELETE_LEAGUE_DRAFT, request.period)
            await conn.executemany(
                queries.UPSERT_LEAGUE_ROW,
                [
                    (request.period, r.unit_id, r.unit_kind, "draft", r.rank, r.listed, r.score,
                     r.model_dump(mode="json"), now, r.name)
                    for r in rows
                ],
            )
            await conn.execute(
                queries.UPSERT_PUBLICATION, request.period, request.weights, request.comments, now, request.draft,
                request.min_volume, [a.model_dump(mode="json") for a in request.adjustments],
                [c.model_dump(mode="json") for c in changed],
            )
        return LeagueTable(
            period=request.period, status="draft", weights=request.weights, computed_at=now, rows=rows,
            comments=request.comments, draft=request.draft, min_volume=request.min_volume,
            adjustments=request.adjustments, changes=changed,
        )

    @activity.defn
    async def publish_league(self, request: PeriodRequest) -> datetime:
        now = activity.info().current_attempt_scheduled_time
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.PUBLISH_LEAGUE, request.period, now)
            return (await conn.fetchrow(queries.SELECT_PUBLICATION, request.period))["published_at"]

    @activity.defn
    async def announce_league(self, announcement: Announcement) -> None:
        """POST the published table to the webhook; the Idempotency-Key lets the receiver drop
        the duplicate a retry may send."""
        async with httpx.AsyncClient(timeout=20) as client:
            response = await client.post(
                announcement.webhook,
                json=announcement.table.model_dump(mode="json"),
                headers={"Idempotency-Key": f"league-{announcement.period}"},
            )
            response.raise_for_status()
        async with self.pool.acquire() as conn:
            await conn.execute(queries.MARK_ANNOUNCED, announcement.period, activity.info().current_attempt_scheduled_time)

    def all(self) -> list:
        return [
            self.evaluation_window, self.league_policy, self.open_round, self.record_rating, self.close_round,
            self.rounds_closed, self.compute_league, self.publish_league, self.announce_league,
        ]


def row_of(kind: str, record: asyncpg.Record) -> LeagueRow:
    """A league row from the SQL's: the rates, their numerators, denominators and intervals."""
    keys = ("unit_id", "name", "volume", "on_time_accept", "on_time_resolve", "satisfaction", "reopen_rate",
            "penalty_rate", "penalties", "evaluation", "pushed_down")
    return LeagueRow(unit_kind=kind, score=record["score"] or 0.0, rates=rates_of(record), **{k: record[k] for k in keys})
