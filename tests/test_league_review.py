"""The draft's review on the dev server (updates): approve, send back with comments, the hold
policy; the rating route and the league routes of the API; the quarterly Schedule."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowUpdateFailedError

from schemas.deadline import DeadlineSpec
from schemas.evaluation import EvaluationInput
from schemas.league import LeagueInput, LeaguePolicy
from schemas.period import quarter_of
from tests.api_support import key, serve_api
from tests.conftest import issue_worker
from tests.helpers import GRID_WORKER, STREET_HANDLER, act, dept, drafted, ids, listed, polled, round_closing_during_check, start
from whistle.schedules import BRIEFING_SCHEDULE_ID, SCHEDULE_ID, apply_schedules, backfill, fire_time, quarter_range
from workflows.evaluation import ReverseEvaluationWorkflow
from workflows.league import LeagueTableWorkflow

SUPERVISOR = {"id": "sv", "role": "supervisor"}


async def league_in_draft(client, tq, period, policy):
    """A closed (empty, 2-second) round and a league table waiting for review."""
    evaluation = await client.start_workflow(
        ReverseEvaluationWorkflow.run, EvaluationInput(quarter=period, window=DeadlineSpec(duration="PT1S"), reminders=[]),
        id=f"evaluation-{period}", task_queue=tq)
    await evaluation.result()
    league = await client.start_workflow(LeagueTableWorkflow.run, LeagueInput(period=period, policy=policy),
                                         id=f"league-{period}", task_queue=tq)
    await drafted(league)
    return league


async def test_send_back_then_approve(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "tree-trimming")
        await act(h, "escalate", actor=GRID_WORKER, reason="r")
        await act(h, "dispatch", actor=STREET_HANDLER)
        await act(h, "accept", actor=dept("lvhua"))
        period = quarter_of(datetime.now(ZoneInfo("Asia/Shanghai")))
        league = await league_in_draft(dev_env.client, tq, period, LeaguePolicy(approval_deadline="PT1H"))
        with pytest.raises(WorkflowUpdateFailedError):
            await league.execute_update("review_draft", {"actor": {"id": "x", "role": "street", "unit_id": "heping"}, "decision": "approve"})
        with pytest.raises(WorkflowUpdateFailedError):  # sending back needs a reason
            await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "send_back"})
        s = await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "send_back", "comments": "核对城管数据"})
        assert s["drafts"] == 2 and s["stage"] == "draft" and s["table"]["comments"] == ["核对城管数据"]
        s = await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "approve"})
        assert s["stage"] == "published"
        result = await league.result()
    assert any(r.unit_id == "lvhua" for r in result.table.rows)


async def test_send_back_with_adjustments_on_the_current_quarter(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as tq:
        issues = []
        for _ in range(2):
            h = await start(dev_env.client, tq, "tree-trimming")
            await act(h, "escalate", actor=GRID_WORKER, reason="r")
            await act(h, "dispatch", actor=STREET_HANDLER)
            await act(h, "accept", actor=dept("lvhua"))
            issues.append(h.id.removeprefix("issue-"))
        period = quarter_of(datetime.now(ZoneInfo("Asia/Shanghai")))
        league = await league_in_draft(dev_env.client, tq, period, LeaguePolicy(approval_deadline="PT1H"))
        first = await league.query(LeagueTableWorkflow.state)
        [lvhua] = [r for r in first.table.rows if r.unit_id == "lvhua"]
        assert lvhua.volume == 2 and first.table.draft == 1
        with pytest.raises(WorkflowUpdateFailedError):  # an adjustment needs its reason
            await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "send_back", "comments": "c",
                                                         "adjustments": [{"kind": "exclude_issue", "unit_id": "lvhua"}]})
        adjustment = {"kind": "exclude_issue", "unit_id": "lvhua", "issue_id": issues[0], "reason": "仲裁认定非园林职责"}
        with pytest.raises(WorkflowUpdateFailedError) as info:  # a unit the draft does not show
            await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "send_back", "comments": "c",
                                                         "adjustments": [adjustment | {"unit_id": "nobody"}]})
        assert "no unit nobody in this draft" in str(info.value.cause)
        s = await league.execute_update("review_draft", {
            "actor": SUPERVISOR, "decision": "send_back", "comments": "剔除误派工单", "adjustments": [adjustment]})
        table = s["table"]
        assert s["drafts"] == 2 and table["draft"] == 2
        [row] = [r for r in table["rows"] if r["unit_id"] == "lvhua"]
        assert row["volume"] == 1
        assert {"unit_id": "lvhua", "unit_kind": "department", "field": "volume", "before": 2, "after": 1} in table["changes"]
        [recorded] = table["adjustments"]
        assert recorded["by"] == "sv" and recorded["draft"] == 1 and recorded["reason"] == "仲裁认定非园林职责"
        s = await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "approve"})
        assert s["stage"] == "published"
        result = await league.result()
    assert result.table.adjustments[0].issue_id == issues[0]
    async with pool.acquire() as conn:
        publication = await conn.fetchrow("SELECT * FROM league_publications WHERE period = $1", period)
    assert publication["status"] == "published" and publication["adjustments"][0]["by"] == "sv"
    assert publication["draft"] == 2 and publication["changes"]


async def test_hold_policy_waits_and_reminds(dev_env, demo, pool):
    from activities.notifier import MemoryNotifier

    notes = MemoryNotifier()
    async with issue_worker(dev_env.client, demo, pool, notes) as tq:
        policy = LeaguePolicy(approval_deadline="PT1S", on_no_answer="hold")
        league = await league_in_draft(dev_env.client, tq, "2025Q2", policy)
        # The 1 s deadline passes, the draft is held and the supervisor reminded.
        s = await polled(lambda: league.query(LeagueTableWorkflow.state),
                         lambda s: any("held" in line for line in s.history) and sum(n.kind == "league_draft" for n in notes.sent) >= 2)
        assert s.stage == "draft" and any("held" in line for line in s.history)
        assert sum(n.kind == "league_draft" for n in notes.sent) >= 2  # reminded again
        await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "approve"})
        assert (await league.result()).stage == "published"


async def test_a_round_closed_while_the_rounds_are_checked_wakes_the_table(dev_env, demo, pool):
    """The round's close is signalled while the table is checking the rounds (a fake check that
    sends it, then answers "not yet"): it counts, and the draft follows at once, not at the next
    poll (an hour here, six by default). It used to be cleared when the check answered."""
    client = dev_env.client
    async with issue_worker(client, demo, pool, replacing=[round_closing_during_check(client)]) as tq:
        league = await client.start_workflow(
            LeagueTableWorkflow.run, LeagueInput(period="2018Q3", policy=LeaguePolicy(approval_deadline="PT1H", poll_every="PT1H")),
            id="league-2018Q3", task_queue=tq)
        await drafted(league)
        await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "approve"})
        assert (await league.result()).stage == "published"


async def test_rating_route_and_league_routes(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api:
        tq = api.task_queue
        issue = await api.http.post("/v1/issues", headers=key("hotline-12345"), json={
            "channel": "hotline", "reference": "ev-1", "category": "tree-trimming", "grid_id": "heping-a1-c1-g1",
            "description": "x"})
        iid = issue.json()["issue_id"]
        await api.http.post(f"/v1/issues/{iid}/actions/escalate", json={"reason": "r"}, headers=key("grid-heping-a1-c1-g1"))
        await api.http.post(f"/v1/issues/{iid}/actions/dispatch", json={}, headers=key("street-heping"))
        await asyncio.sleep(0.3)
        period = quarter_of(datetime.now(ZoneInfo("Asia/Shanghai")))
        evaluation = await dev_env.client.start_workflow(
            ReverseEvaluationWorkflow.run, EvaluationInput(quarter=period, window=DeadlineSpec(duration="PT8S"), reminders=[]),
            id=f"evaluation-{period}", task_queue=tq)
        url = f"/v1/evaluations/{period}/ratings"
        body = {"target_id": "lvhua", "responsiveness": 4, "quality": 5, "attitude": 5}
        for _ in range(200):  # the round opens within milliseconds (seconds on a loaded machine)
            r = await api.http.post(url, json=body, headers=key("community-heping-a1-c1"))
            if r.status_code != 409 or "opening" not in r.text:
                break
            await asyncio.sleep(0.05)
        assert r.status_code == 200 and r.json()["target_id"] == "lvhua"
        assert (await api.http.post(url, json=body, headers=key("street-heping"))).status_code == 403
        assert (await api.http.post(url, json=body, headers=key("community-other"))).status_code == 403  # nothing to rate
        r = await api.http.post(url, json=body | {"target_id": "shichang"}, headers=key("community-heping-a1-c1"))
        assert r.status_code == 409 and "did not handle" in r.json()["error"]
        r = await api.http.post(url, json=body | {"pushed_down": True}, headers=key("community-heping-a1-c1"))
        assert r.status_code == 422  # evidence needed
        assert (await api.http.post(url, json=body | {"quality": 9}, headers=key("community-heping-a1-c1"))).status_code == 422
        assert (await api.http.post("/v1/evaluations/2001Q1/ratings", json=body, headers=key("community-heping-a1-c1"))).status_code == 404
        assert (await api.http.post("/v1/evaluations/2026Q9/ratings", json=body, headers=key("community-heping-a1-c1"))).status_code == 422
        await evaluation.result()
        r = await api.http.post(url, json=body, headers=key("community-heping-a1-c1"))
        assert r.status_code == 409  # refused after close
        assert (await api.http.get(f"/v1/league/{period}")).status_code == 404  # nothing published yet
        league = await dev_env.client.start_workflow(
            LeagueTableWorkflow.run, LeagueInput(period=period, policy=LeaguePolicy(approval_deadline="PT1H")),
            id=f"league-{period}", task_queue=tq)
        bad = {"decision": "send_back", "comments": "c", "adjustments": [{"kind": "void_rating", "unit_id": "lvhua", "reason": "报复性评价"}]}
        r = await api.http.post(f"/v1/league/{period}/review", json=bad, headers=key("supervisor"))
        assert r.status_code == 422 and "community_id" in r.text  # whose rating: refused before it reaches the workflow
        for _ in range(100):
            r = await api.http.post(f"/v1/league/{period}/review", json={"decision": "approve"}, headers=key("supervisor"))
            if r.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert r.status_code == 200 and r.json()["stage"] == "published"
        assert (await api.http.post(f"/v1/league/{period}/review", json={"decision": "approve"}, headers=key("ops"))).status_code == 403
        table = (await api.http.get(f"/v1/league/{period}")).json()
        assert table["status"] == "published" and table["departments"][0]["unit_id"] == "lvhua"
        assert table["departments"][0]["evaluation"] == pytest.approx(14 / 15)
        evaluation = table["departments"][0]["rates"]["evaluation"]
        assert (evaluation["numerator"], evaluation["denominator"]) == (14, 15) and len(evaluation["interval"]) == 2
        assert table["departments"][0]["score_interval"] and table["departments"][0]["ranked"] is False  # one issue
        page = await api.http.get(f"/league/{period}")
        assert page.status_code == 200 and "红黑榜" in page.text and "<svg" in page.text and "<table" in page.text
        await league.result()


async def test_schedule_apply_is_idempotent_and_fires_each_quarter(dev_env):
    client = dev_env.client
    both = {SCHEDULE_ID, BRIEFING_SCHEDULE_ID}

    async def apply(task_queue: str, *zone: str) -> set[str]:
        done = await apply_schedules(client, task_queue, *zone)
        assert set(done) == both  # every schedule says what was done to it
        return set(done.values())

    assert await apply("whistle-test-schedules") <= {"created", "updated", "unchanged"}
    assert await apply("whistle-test-schedules") == {"unchanged"}  # the monthly briefing's too
    assert await apply("whistle-test-schedules-2") == {"updated"}  # another definition
    assert await apply("whistle-test-schedules") == {"updated"}
    assert await apply("whistle-test-schedules") == {"unchanged"}
    described = await client.get_schedule_handle(SCHEDULE_ID).describe()
    spec = described.schedule.spec
    assert spec.time_zone_name == "Asia/Shanghai"
    tz = ZoneInfo("Asia/Shanghai")
    times = [t.astimezone(tz) for t in described.info.next_action_times]
    assert times and all((t.month, t.day, t.hour, t.minute) in {(m, 1, 9, 0) for m in (1, 4, 7, 10)} for t in times)
    assert fire_time("2026Q3") == datetime(2026, 10, 1, 9, 0, tzinfo=tz)
    assert fire_time("2026Q4") == datetime(2027, 1, 1, 9, 0, tzinfo=tz)
    assert quarter_range("2026Q3", "2027Q1") == ["2026Q3", "2026Q4", "2027Q1"]
    with pytest.raises(ValueError):
        quarter_range("2026Q3", "2026Q1")
    # Another jurisdiction's time zone: 09:00 there, and a changed definition.
    assert await apply("whistle-test-schedules", "Asia/Urumqi") == {"updated"}
    spec = (await client.get_schedule_handle(SCHEDULE_ID).describe()).schedule.spec
    assert spec.time_zone_name == "Asia/Urumqi"
    assert fire_time("2026Q3", "Asia/Urumqi") == datetime(2026, 10, 1, 9, 0, tzinfo=ZoneInfo("Asia/Urumqi"))
    assert await apply("whistle-test-schedules") == {"updated"}  # back, for the tests after


async def test_backfill_starts_the_quarters_rounds(dev_env, demo, pool):
    client = dev_env.client
    async with issue_worker(client, demo, pool) as tq:
        await apply_schedules(client, tq)
        # A quarter not yet ended is refused, and nothing starts for it (none of the range): on a
        # 24 November, that year's Q4 (and the next year's Q1) are still to come.
        today = datetime(2019, 11, 24, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        for first, last in (("2019Q4", "2019Q4"), ("2019Q3", "2020Q1")):
            with pytest.raises(ValueError, match="2019Q4 has not ended"):
                await backfill(client, first, last, now=today)
        assert await backfill(client, "2025Q1", "2025Q2") == ["2025Q1", "2025Q2"]
        wanted = {"evaluation-2025Q1", "league-2025Q1", "evaluation-2025Q2", "league-2025Q2"}
        found = ids(await listed(client, "WorkflowId STARTS_WITH 'evaluation-2025' OR WorkflowId STARTS_WITH 'league-2025'",
                                 lambda ws: wanted <= ids(ws)))
        # Once the later backfill's runs show, anything the refused ones had started would too.
        assert not await listed(client, "WorkflowId STARTS_WITH 'evaluation-2019' OR WorkflowId STARTS_WITH 'evaluation-2020'", timeout=0)
        assert wanted <= found
    await client.get_schedule_handle(SCHEDULE_ID).delete()


async def test_year_end_table_waits_for_all_four_rounds(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as tq:
        league = await dev_env.client.start_workflow(
            LeagueTableWorkflow.run,
            LeagueInput(period="2023", policy=LeaguePolicy(approval_deadline="PT1H", poll_every="PT30S")),
            id="league-2023", task_queue=tq)

        async def round_(q: str) -> None:
            await (await dev_env.client.start_workflow(
                ReverseEvaluationWorkflow.run, EvaluationInput(quarter=q, window=DeadlineSpec(duration="PT1S"), reminders=[]),
                id=f"evaluation-{q}", task_queue=tq)).result()

        await asyncio.gather(*(round_(f"2023Q{n}") for n in (1, 2, 3)))
        await asyncio.sleep(1)
        assert (await league.query(LeagueTableWorkflow.state)).stage == "waiting"
        await round_("2023Q4")  # its close signals league-2023Q4 (absent) and league-2023
        await drafted(league)  # woken by the signal, long before the 30 s poll
        s = await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "approve"})
        assert s["stage"] == "published" and s["period"] == "2023"


async def test_a_january_run_also_starts_the_year_end_table(dev_env, demo, pool):
    client = dev_env.client
    async with issue_worker(client, demo, pool) as tq:
        await apply_schedules(client, tq)
        await backfill(client, "2024Q4", "2024Q4")
        wanted = {"evaluation-2024Q4", "league-2024Q4", "league-2024"}
        found = ids(await listed(client, "WorkflowId STARTS_WITH 'evaluation-2024' OR WorkflowId STARTS_WITH 'league-2024'",
                                 lambda ws: wanted <= ids(ws)))
        assert wanted <= found
    await client.get_schedule_handle(SCHEDULE_ID).delete()
