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
    COMMUNITY, GRID, GRID_WORKER, RESIDENT, STREET, STREET_HANDLER, SUPERVISOR, act, dept, start, state, until,
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


async def test_extension_approved_moves_the_deadline_denied_does_not(dev_env, fast, pool):
    async with issue_worker(dev_env.client, fast, pool) as tq:
        h = await _dispatched(dev_env.client, tq, "illegal-construction")  # chengguan + zhujian
        for d in ("chengguan", "zhujian"):
            await act(h, "accept", actor=dept(d))
            await act(h, "request_extension", actor=dept(d), deadline="resolve", extend_by=HOUR, reason="需要审批")
        before = await state(h)
        s = await act(h, "decide_extension", actor=SUPERVISOR, department_id="chengguan", approve=True)
        assert s.assignment("chengguan").resolve_due == before.assignment("chengguan").resolve_due + timedelta(hours=1)
        s = await act(h, "decide_extension", actor=SUPERVISOR, department_id="zhujian", approve=False, comment="不批")
        assert s.assignment("zhujian").resolve_due == before.assignment("zhujian").resolve_due
        s = await until(h, lambda s: s.penalties, timeout=15)
        assert [(p.unit_id, p.kind) for p in s.penalties] == [("zhujian", "resolve_overdue")]
        assert s.overdue and s.stage == Stage.department  # a missed resolve does not move the issue
        assert [e.approved for e in s.assignment("chengguan").extensions] == [True]


async def test_feedback_window_closes_without_an_answer(dev_env, fast, pool):
    async with issue_worker(dev_env.client, fast, pool) as tq:
        h = await start(dev_env.client, tq, "corridor-clutter")
        await act(h, "resolve", actor=GRID_WORKER, summary="清理")
        result = await h.result()
    assert result.stage == Stage.closed and result.outcome == Outcome.no_feedback
    assert result.history[-1].kind == "feedback_window_closed" and not result.penalties


async def test_feedback_in_time_closes_satisfied(dev_env, fast, pool):
    async with issue_worker(dev_env.client, fast, pool) as tq:
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
    hops = [(e.kind, e.stage_to) for e in s.history if e.stage_from != e.stage_to]
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
        await ts_env.sleep(timedelta(days=4))
        s = await state(h)
    assert [p.unit_id for p in s.penalties][:2] == [GRID, COMMUNITY]
    assert s.stage in (Stage.street, Stage.department)  # a missed community deadline whistles it up
