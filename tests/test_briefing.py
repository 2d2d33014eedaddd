"""The monthly briefing (月度通报): each figure on a hand-made month (tests/league_rows.py), worked
out by hand; MonthlyBriefingWorkflow on the dev server storing and announcing it; the JSON
route, the page (also in headless Chromium) and the monthly Schedule."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from activities.briefing import compute
from activities.notifier import MemoryNotifier
from schemas.briefing import BriefingInput, month_bounds, month_of, previous_month
from tests.api_support import serve_api
from tests.conftest import issue_worker
from tests.test_cli_issues import served, whistle
from tests.league_rows import GRID, T0, Quarter
from whistle.schedules import BRIEFING_SCHEDULE_ID, apply_schedules
from workflows.briefing import MonthlyBriefingWorkflow

MONTH = "2025-07"
OTHER_GRID = "heping-a1-c2-g1"


def a_month() -> Quarter:
    q = Quarter()
    # chengguan: b1 on time, b2 late, b3 open, b4 on time (a repeat of b1: same category and grid
    # within 30 days); b6 was dispatched in June: not this month's.
    for i, resolved in (("b1", True), ("b2", False), ("b3", None)):
        q.issue(i)
        q.reached_street(i)
        q.assign(i, "chengguan", resolved=resolved, status="accepted" if resolved is None else "resolved")
    q.issue("b4", at=T0 + timedelta(days=5))
    q.reached_street("b4")
    q.assign("b4", "chengguan", at=T0 + timedelta(days=5))
    q.issue("b6", at=T0 - timedelta(days=20), category="parking")
    q.assign("b6", "chengguan", at=T0 - timedelta(days=20))
    # Residents' answers: b1 dissatisfied, b2 satisfied; b3 is a patrol's finding: not counted.
    q.issues[2] = q.issues[2][:2] + ("patrol",) + q.issues[2][3:19] + ({"has_reporter": False},)
    q.feedback("b1", False)
    q.feedback("b2", True)
    q.feedback("b3", False)
    # Street: b1, b2, b4 reached feedback; the grid missed its deadline on b2.
    for i in ("b1", "b2", "b4"):
        q.event(i, "resolved", stage_from="department", stage_to="feedback")
    q.penalty("b2", GRID, "handle_overdue")
    q.issue("b5", grid=OTHER_GRID, category="parking")
    return q


async def test_every_figure_of_a_hand_made_month(pool):
    async with pool.acquire() as conn:
        await a_month().write(conn)
        issues, departments, streets, categories, hot_spots = await compute(conn, MONTH, "Asia/Shanghai")
    assert issues == 5  # b1–b5 created in July; b6 in June
    [cg] = departments
    assert (cg.unit_id, cg.dispatched, cg.resolved_on_time, cg.resolved_late, cg.still_open) == ("chengguan", 4, 2, 1, 1)
    assert cg.completion_rate == 3 / 4 and cg.on_time_rate == 2 / 3
    assert (cg.answered, cg.dissatisfied, cg.dissatisfied_rate) == (2, 1, 0.5)
    assert cg.repeat_complaints == 1
    [heping] = streets
    assert (heping.dispatched, heping.resolved_on_time, heping.resolved_late, heping.still_open) == (5, 2, 1, 2)
    assert heping.repeat_complaints == 1 and heping.dissatisfied == 1
    assert [(c.category, c.issues) for c in categories] == [("tree-trimming", 4), ("parking", 1)]
    assert [(h.grid_id, h.issues) for h in hot_spots] == [(GRID, 4), (OTHER_GRID, 1)]
    for u in departments + streets:
        for rate in (u.completion_rate, u.on_time_rate, u.dissatisfied_rate):
            assert rate is None or 0 <= rate <= 1


def test_months():
    assert month_bounds("2025-12") == (datetime(2025, 12, 1, tzinfo=ZoneInfo("Asia/Shanghai")),
                                       datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert previous_month("2026-01") == "2025-12" and previous_month("2026-03") == "2026-02"
    assert month_of(datetime(2026, 1, 31, 17, tzinfo=ZoneInfo("UTC"))) == "2026-02"  # 01:00 in Shanghai


async def test_workflow_stores_announces_and_serves_the_briefing(dev_env, demo, pool):
    async with pool.acquire() as conn:
        await a_month().write(conn)
    notes = MemoryNotifier()
    async with issue_worker(dev_env.client, demo, pool, notes) as tq:
        briefing = await dev_env.client.execute_workflow(
            MonthlyBriefingWorkflow.run, BriefingInput(month=MONTH), id=f"briefing-{MONTH}-test", task_queue=tq)
    assert briefing.month == MONTH and briefing.departments[0].dispatched == 4
    [note] = [n for n in notes.sent if n.kind == "briefing"]
    assert note.subject == f"briefing-{MONTH}" and note.issue_id is None and f"/briefings/{MONTH}" in note.message
    async with serve_api(dev_env, demo, pool) as api:
        r = await api.http.get(f"/v1/briefings/{MONTH}")
        assert r.status_code == 200
        body = r.json()
        assert body["departments"][0]["resolved_late"] == 1 and body["announced_at"]
        assert body["hot_spots"][0]["grid_id"] == GRID and body["top_categories"][0]["category"] == "tree-trimming"
        page = await api.http.get(f"/briefings/{MONTH}")
        assert page.status_code == 200 and f"{MONTH} 月度通报" in page.text and "<svg" in page.text
        missing = await api.http.get("/v1/briefings/2001-01")
        assert missing.status_code == 404 and "no monthly briefing" in missing.json()["error"]
        assert (await api.http.get("/v1/briefings/2025-13")).status_code == 422
        assert (await api.http.get("/briefings/2025-7")).status_code == 422
        async with served(api.app) as url:
            code, out, err = await whistle("briefing", "show", MONTH, key=None, url=url)
            assert code == 0, err
            assert f"{MONTH} 月度通报: 5 issues" in out and "区城管执法局" in out and "树木修剪" in out
            code, _, err = await whistle("briefing", "show", "2001-01", key=None, url=url)
            assert code == 1 and "no briefing for 2001-01" in err


async def test_unscheduled_run_takes_the_month_before(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as tq:
        briefing = await dev_env.client.execute_workflow(
            MonthlyBriefingWorkflow.run, id="briefing-previous-test", task_queue=tq)
    assert briefing.month == previous_month(month_of(datetime.now(ZoneInfo("Asia/Shanghai"))))


async def test_the_monthly_schedule(dev_env):
    client = dev_env.client
    await apply_schedules(client, "whistle-test-briefing")
    await apply_schedules(client, "whistle-test-briefing")  # again: the same schedules, no error
    described = await client.get_schedule_handle(BRIEFING_SCHEDULE_ID).describe()
    assert described.schedule.action.workflow == "MonthlyBriefingWorkflow"
    assert described.schedule.spec.time_zone_name == "Asia/Shanghai"
    tz = ZoneInfo("Asia/Shanghai")
    times = [t.astimezone(tz) for t in described.info.next_action_times]
    assert times and all((t.day, t.hour, t.minute) == (1, 8, 0) for t in times)
    await client.get_schedule_handle(BRIEFING_SCHEDULE_ID).delete()
    from whistle.schedules import SCHEDULE_ID

    await client.get_schedule_handle(SCHEDULE_ID).delete()


@pytest.mark.skipif(not os.environ.get("CI") and not __import__("shutil").which("chromium"), reason="no chromium")
async def test_briefing_page_in_a_real_browser(dev_env, demo, pool, tmp_path):
    from api.app import build_deps, create_app
    from tests.api_support import store
    from tests.test_cli_issues import served
    from tests.test_league_page import chromium
    from whistle.config import Settings

    async with pool.acquire() as conn:
        await a_month().write(conn)
    async with issue_worker(dev_env.client, demo, pool) as tq:
        await dev_env.client.execute_workflow(
            MonthlyBriefingWorkflow.run, BriefingInput(month=MONTH), id=f"briefing-{MONTH}-page", task_queue=tq)
        s = Settings(task_queue=tq, token_secret="t")
        deps = build_deps(s, dev_env.client, pool, demo)
        deps.principals = store(demo)
        async with served(create_app(deps, s)) as base:
            dom = await chromium("--dump-dom", f"{base}/briefings/{MONTH}")
            shot = tmp_path / "briefing.png"
            await chromium(f"--screenshot={shot}", "--window-size=1400,1400", f"{base}/briefings/{MONTH}")
    assert f"{MONTH} 月度通报" in dom and "区城管执法局" in dom and "和平" in dom
    assert dom.count('<table class="briefing">') == 2 and dom.count('<svg class="chart"') == 4
    assert "按时办结" in dom and "超时办结" in dom and "高发问题类别" in dom and "问题热点网格" in dom
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from pathlib import Path

    Path(os.environ.get("WHISTLE_SCREENSHOT_DIR", tmp_path)).joinpath("briefing.png").write_bytes(shot.read_bytes())


def test_docs_show_the_sql_that_runs():
    from pathlib import Path

    from whistle.db import queries

    doc = (Path(__file__).parents[1] / "docs" / "briefing.md").read_text(encoding="utf-8")
    for sql in (queries.BRIEFING_DEPARTMENTS, queries.BRIEFING_STREETS, queries.BRIEFING_ISSUES,
                queries.BRIEFING_TOP_CATEGORIES, queries.BRIEFING_HOT_SPOTS):
        assert sql.strip() in doc
