"""Deadlines. Flows with updates run on the dev server with short exact-duration policies
(seconds); flows driven by timers alone run on the time-skipping server with the real
working-day policies."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.notifier import MemoryNotifier
from schemas.issue import AssignmentStatus, Outcome, Stage
from schemas.jurisdiction import LevelPolicy
from tests.conftest import issue_worker
from tests.helpers import (
    COMMUNITY, GRID, GRID_WORKER, RESIDENT, STREET, STREET_HANDLER, SUPERVISOR, act, dept, events, start, state, until,
    with_policies,
)
from whistle.db import queries
from whistle.temporal import OVERDUE

HOUR = "PT1H"


@pytest.fixture
def fast(demo):
    """Ladder levels keep an hour; departments get seconds."""
    return with_policies(
        demo,
        grid=LevelPolicy(handle=HOUR),
        community=LevelPolicy(handle=HOUR),
        area=LevelPolicy(handle=HOUR),
        street=LevelPolicy(handle=HOUR),
        department=LevelPolicy(accept="PT3S", resolve="PT4S", reminders=[0.5]),
        feedback_window="PT2S",
    )


async def _dispatched(client, tq, category="tree-trimming"):
    h = await start(client, tq, category)
    await act(h, "escalate", actor=GRID_WORKER, reason="r")
    await act(h, "dispatch", actor=STREET_HANDLER)
    return h


async def test_missed_accept_penalises_flags_notifies_and_escalates(dev_env, fast, pool):
    notes = MemoryNotifier()
    async with issue_worker(dev_env.client, fast, pool, notes) as tq:
        h = await _dispatched(dev_env.client, tq)
        s = await until(h, lambda s: s.stage == Stage.arbitration, timeout=15)
    assert s.overdue and s.owner_unit == "supervisor"
    assert [(p.unit_id, p.kind) for p in s.penalties] == [("lvhua", "accept_overdue")]
    assert s.assignment("lvhua").status == AssignmentStatus.escalated
    assert ("overdue", "supervisor") in [(n.kind, n.unit_id) for n in notes.sent]
    # Reminded at half time of the report-in deadline before the miss.
    assert [r.fraction for r in s.reminders if r.deadline_key.startswith("accept:")] == [0.5]
    assert (await h.describe()).typed_search_attributes.get(OVERDUE) is True
    async with pool.acquire() as conn:
        rows = await conn.fetch(queries.SELECT_PENALTIES, s.issue_id)
    assert [(r["unit_id"], r["kind"]) for r in rows] == [("lvhua", "accept_overdue")]


async def test_extension_approved_moves_the_deadline_denied_does_not(dev_env, demo, pool):
    # Report-in keeps an hour (nothing here misses it); resolve gets seconds, enough for the
    # four updates before the approval even on a loaded machine.
    j = with_policies(demo, department=LevelPolicy(accept=HOUR, resolve="PT8S", reminders=[]))
    async with issue_worker(dev_env.client, j, pool) as tq:
        h = await _dispatched(dev_env.client, tq, "illegal-construction")  # chengguan + zhujian
        for d in ("chengguan", "zhujian"):
            await act(h, "accept", actor=dept(d))
            await act(h, "request_extension", actor=dept(d), deadline="resolve", extend_by=HOUR, reason="需要审批")
        before = await state(h)
        s = await act(h, "decide_extension", actor=SUPERVISOR, department_id="chengguan", approve=True)
        assert s.assignment("chengguan").resolve_due == before.assignment("chengguan").resolve_due + timedelta(hours=1)
        s = await act(h, "decide_extension", actor=SUPERVISOR, department_id="zhujian", approve=False, comment="不批")
        assert s.assignment("zhujian").resolve_due == before.assignment("zhujian").resolve_due
        s = await until(h, lambda s: s.penalties, timeout=30)
        assert [(p.unit_id, p.kind) for p in s.penalties] == [("zhujian", "resolve_overdue")]
        assert s.overdue and s.stage == Stage.department  # a missed resolve does not move the issue
        assert [e.approved for e in s.assignment("chengguan").extensions] == [True]


async def test_feedback_window_closes_without_an_answer(dev_env, fast, pool):
    async with issue_worker(dev_env.client, fast, pool) as tq:
        h = await start(dev_env.client, tq, "corridor-clutter")
        await act(h, "resolve", actor=GRID_WORKER, summary="清理")
        result = await h.result()
    assert result.stage == Stage.closed and result.outcome == Outcome.no_feedback
    assert (await events(pool, result))[-1].kind == "feedback_window_closed" and not result.penalties


async def test_feedback_in_time_closes_satisfied(dev_env, fast, pool):
    async with issue_worker(dev_env.client, with_policies(fast, feedback_window=HOUR), pool) as tq:
        h = await start(dev_env.client, tq, "corridor-clutter")
        await act(h, "resolve", actor=GRID_WORKER, summary="清理")
        s = await act(h, "feedback", actor=RESIDENT, satisfied=True)
    assert s.outcome == Outcome.satisfied


async def test_untouched_issue_climbs_the_ladder_on_working_days(ts_env, demo, pool):
    """Nobody acts: each level's working-day deadline passes, with reminders, penalties and
    automatic escalation, until the departments miss their report-in."""
    notes = MemoryNotifier()
    async with issue_worker(ts_env.client, demo, pool, notes) as tq:
        h = await start(ts_env.client, tq, "illegal-construction")
        await ts_env.sleep(timedelta(days=21))
        s = await state(h)
    assert s.stage == Stage.arbitration and s.overdue
    penalised = [(p.unit_id, p.kind) for p in s.penalties]
    assert penalised == [
        (GRID, "handle_overdue"), (STREET, "handle_overdue"),
        ("chengguan", "accept_overdue"), ("zhujian", "accept_overdue"),
    ]
    hops = [(e.kind, e.stage_to) for e in await events(pool, s) if e.stage_from != e.stage_to]
    assert hops[:4] == [
        ("auto_escalated", Stage.community), ("auto_escalated", Stage.area),
        ("auto_escalated", Stage.street), ("dispatched", Stage.department),
    ]
    # Reminders at 50% and 80% of each deadline before it was missed.
    reminded = {(r.unit_id, r.fraction) for r in s.reminders}
    assert {(GRID, 0.5), (GRID, 0.8), (STREET, 0.5), (STREET, 0.8), ("chengguan", 0.5), ("chengguan", 0.8)} <= reminded
    for d in s.deadlines:
        if d.missed:  # deadlines end at 24:00 Asia/Shanghai
            assert d.due_at.utcoffset() == timedelta(hours=8) and (d.due_at.hour, d.due_at.minute) == (0, 0)
    assert sum(1 for n in notes.sent if n.kind == "overdue") == 4


async def test_community_duty_waits_at_the_community_then_escalates(ts_env, demo, pool):
    async with issue_worker(ts_env.client, demo, pool) as tq:
        h = await start(ts_env.client, tq, "neighbour-dispute")
        # Day by day (working-day deadlines: how many calendar days depends on today's weekday
        # and holidays) until two deadlines were missed.
        for _ in range(21):
            await ts_env.sleep(timedelta(days=1))
            s = await state(h)
            if len(s.penalties) >= 2:
                break
    assert [p.unit_id for p in s.penalties][:2] == [GRID, COMMUNITY]
    assert s.stage in (Stage.street, Stage.department)  # a missed community deadline whistles it up


@pytest.fixture
async def own_ts_env():
    """A time-skipping server of this test's own: another test's workflow left with a timer
    and no worker would hold the shared server's clock when that timer fires."""
    from temporalio.testing import WorkflowEnvironment

    from tests.conftest import CONVERTER, TS_ATTESTATION
    from whistle.console.dev import find_binary
    from whistle.temporal import ensure_search_attributes

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER, interceptors=TS_ATTESTATION,
        test_server_existing_path=str(find_binary("temporal-test-server")))
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


async def test_a_missed_resolve_is_supervised_each_working_day_until_resolved(own_ts_env, demo, pool):
    """One penalty for the miss; then a 督办 to the department and the supervisor at the end of
    each working day, DueAt on the next one, until the department resolves."""
    ts_env = own_ts_env
    notes = MemoryNotifier()
    async with issue_worker(ts_env.client, demo, pool, notes) as tq:
        with ts_env.auto_time_skipping_disabled():  # time stands still while updates run
            h = await _dispatched(ts_env.client, tq)  # tree-trimming: lvhua leads
            s = await act(h, "accept", actor=dept("lvhua"))
        resolve_due = s.assignment("lvhua").resolve_due
        while (await state(h)).updated_at < resolve_due + timedelta(days=3):
            await ts_env.sleep(timedelta(days=1))
        s = await state(h)
        supervised = [e for e in await events(pool, s) if e.kind == "supervised"]
        assert 1 <= len(supervised) <= 4
        assert [(p.unit_id, p.kind) for p in s.penalties] == [("lvhua", "resolve_overdue")]
        assert s.stage == Stage.department and s.overdue
        # Each 督办 falls at 24:00 local on a working day, a working day after the last.
        nxt = [d for d in s.deadlines if d.open and d.kind == "supervise"]
        assert len(nxt) == 1 and s.due_at == nxt[0].due_at > s.updated_at
        assert nxt[0].due_at.utcoffset() == timedelta(hours=8) and (nxt[0].due_at.hour, nxt[0].due_at.minute) == (0, 0)
        sent = [(n.kind, n.unit_id) for n in notes.sent if n.kind == "supervision"]
        assert sent.count(("supervision", "lvhua")) == sent.count(("supervision", "supervisor")) == len(supervised)
        with ts_env.auto_time_skipping_disabled():
            s = await act(h, "resolve", actor=dept("lvhua"), summary="终于修剪")
        assert s.stage == Stage.feedback and not [d for d in s.deadlines if d.open and d.kind == "supervise"]
        assert s.due_at is not None  # now the feedback window's


async def test_an_approved_working_day_extension_adds_exactly_those_days(dev_env, demo, pool):
    from schemas.deadline import DeadlineSpec
    from whistle.workdays import WorkingCalendar

    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await _dispatched(dev_env.client, tq)
        await act(h, "accept", actor=dept("lvhua"))
        await act(h, "request_extension", actor=dept("lvhua"), deadline="resolve", extend_by="2WD", reason="等配件")
        before = (await state(h)).assignment("lvhua").resolve_due
        s = await act(h, "decide_extension", actor=SUPERVISOR, department_id="lvhua", approve=True)
    after = s.assignment("lvhua").resolve_due
    calendar = WorkingCalendar(demo.calendar, demo.timezone)
    # before is 24:00 of a working day: two working days later is 24:00 of the second one.
    day, counted = (before - timedelta(microseconds=1)).astimezone(calendar.tz).date(), 0
    while counted < 2:
        day += timedelta(days=1)
        counted += calendar.is_working_day(day)
    assert after.astimezone(calendar.tz).date() == day + timedelta(days=1) and (after.hour, after.minute) == (0, 0)
    assert after < calendar.deadline(before, DeadlineSpec(working_days=2))  # the old arithmetic gave a day more
