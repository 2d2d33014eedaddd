"""A whole quarter with time skipping: issues handled by an on-time department (lvhua) and a
late one (chengguan) → penalties → reverse evaluation → the red/black list, published by the
no-answer policy; every number reproduced from the read model with the SQL of docs/league.md."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from schemas.period import period_bounds
from tests.quarter_support import COMMUNITY, Hook, step
from whistle.db import queries


async def test_the_late_department_is_black_by_the_hard_rule_and_one_issue_lists_no_one_red(quarter):
    rows = {r.unit_id: r for r in quarter["league"].table.rows if r.unit_kind == "department"}
    # One issue each: too few to rank (样本不足); the penalties' hard rule lists chengguan anyway.
    assert rows["chengguan"].listed == "black" and rows["lvhua"].listed is None
    assert not rows["lvhua"].ranked and rows["lvhua"].rank == 0 and "样本不足" in rows["lvhua"].reasons[0]
    assert rows["chengguan"].penalties == 2 and rows["chengguan"].on_time_accept == 0.0
    assert rows["lvhua"].on_time_accept == 1.0 and rows["lvhua"].on_time_resolve == 1.0 and rows["lvhua"].satisfaction == 1.0
    assert any("硬性规则：罚单 2 张" in reason for reason in rows["chengguan"].reasons)
    assert rows["lvhua"].score > rows["chengguan"].score
    rate = rows["lvhua"].rates["on_time_accept"]
    assert (rate.numerator, rate.denominator) == (1, 1) and rate.interval[0] < 1.0 == rate.interval[1]
    lo, hi = rows["lvhua"].score_interval
    assert lo < rows["lvhua"].score <= hi
    assert [p.unit_id for p in quarter["late"].penalties] == ["chengguan", "chengguan"]


async def test_every_number_comes_from_the_read_model_sql(quarter):
    period, pool = quarter["period"], quarter["pool"]
    start_, end = period_bounds(period)
    weights = quarter["policy"].resolved_weights()
    async with pool.acquire() as conn:
        fresh = await conn.fetch(queries.LEAGUE_DEPARTMENTS, start_, end, [period], weights, [])
        stored = {r["unit_id"]: r for r in await conn.fetch(queries.SELECT_LEAGUE_ROWS, period)}
        publication = await conn.fetchrow(queries.SELECT_PUBLICATION, period)
    assert publication["status"] == "published" and publication["announced_at"]
    for r in fresh:
        row = stored[r["unit_id"]]
        assert row["status"] == "published" and row["score"] == r["score"]
        for metric in ("volume", "on_time_accept", "on_time_resolve", "satisfaction", "reopen_rate", "penalty_rate",
                       "penalties", "evaluation", "pushed_down"):
            assert row["metrics"][metric] == r[metric], metric
        for rate, published in row["metrics"]["rates"].items():
            assert (published["numerator"], published["denominator"]) == (r[f"{rate}_num"], r[f"{rate}_den"])
            assert published["value"] is None or 0 <= published["value"] <= 1


async def test_evaluation_round_targets_ratings_and_close(quarter):
    opened, closed = quarter["opened"], quarter["closed"]
    targets = {c.community_id: c.targets for c in opened.communities}
    assert set(targets["heping-a1-c1"]) == {"chengguan", "heping", "lvhua"}
    assert closed.closed and closed.closes_at > closed.opened_at + timedelta(days=13)  # 10 working days
    revised = closed.ratings["heping-a1-c1|chengguan"]
    assert (revised.responsiveness, revised.pushed_down) == (1, True)
    assert closed.reminders_sent == [0.5, 0.8]
    async with quarter["pool"].acquire() as conn:
        rows = await conn.fetch("SELECT target_id, responsiveness FROM ratings WHERE quarter = $1 ORDER BY target_id", quarter["period"])
    assert [(r["target_id"], r["responsiveness"]) for r in rows] == [("chengguan", 1), ("lvhua", 5)]


async def test_ratings_after_close_are_refused(quarter):
    with pytest.raises(Exception) as info:
        await step(quarter["env"], quarter["evaluation"].execute_update(
            "rate", {"actor": COMMUNITY, "target_id": "lvhua", "responsiveness": 1, "quality": 1, "attitude": 1}))
    assert not isinstance(info.value, asyncio.TimeoutError)


async def test_published_by_the_no_answer_policy_and_announced(quarter):
    league = quarter["league"]
    assert league.stage == "published" and league.drafts == 1
    assert any("published by policy" in line for line in league.history)
    [(body, key)] = [h for h in Hook.received if h[0]["period"] == quarter["period"]]
    assert key == f"league-{quarter['period']}" and body["status"] == "published"


def test_docs_show_the_sql_that_runs():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "league.md").read_text(encoding="utf-8")
    for sql in (queries.LEAGUE_DEPARTMENTS, queries.LEAGUE_STREETS, queries.EVALUATION_TARGETS):
        assert sql.strip() in doc
