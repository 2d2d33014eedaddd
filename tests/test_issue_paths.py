"""Every path of the ladder, driven by updates on the dev server."""

from __future__ import annotations

import asyncio

import pytest

from schemas.issue import AssignmentStatus, Outcome, Stage
from tests.conftest import issue_worker
from tests.helpers import (
    AREA, AREA_HANDLER, COMMUNITY, COMMUNITY_HANDLER, GRID, GRID_WORKER, RESIDENT, STREET, STREET_HANDLER,
    SUPERVISOR, act, dept, events, listed, start,
)
from whistle.db import queries


@pytest.fixture
async def tq(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as task_queue:
        yield task_queue


async def kinds(pool, s) -> list[str]:
    return [e.kind for e in await events(pool, s)]


async def test_grid_worker_resolves_on_the_spot(dev_env, tq, pool):
    h = await start(dev_env.client, tq, "corridor-clutter")
    s = await act(h, "resolve", actor=GRID_WORKER, summary="当场清理")
    assert s.stage == Stage.feedback and s.resolved_by == [GRID]
    s = await act(h, "feedback", actor=RESIDENT, satisfied=True)
    assert s.stage == Stage.closed and s.outcome == Outcome.satisfied
    assert await kinds(pool, s) == ["intake", "resolved", "feedback"]
    assert await h.result() == s


async def test_community_duty_stays_and_community_resolves(dev_env, tq):
    h = await start(dev_env.client, tq, "neighbour-dispute")
    s = await act(h, "escalate", actor=GRID_WORKER, reason="需要社区调解")
    assert s.stage == Stage.community and s.owner_unit == COMMUNITY  # a community duty stays
    s = await act(h, "resolve", actor=COMMUNITY_HANDLER, summary="调解完成")
    assert s.stage == Stage.feedback and s.resolved_by == [COMMUNITY]


async def test_community_handler_may_escalate_its_own_duty(dev_env, tq, pool):
    h = await start(dev_env.client, tq, "neighbour-dispute")
    await act(h, "escalate", actor=GRID_WORKER, reason="x")
    s = await act(h, "escalate", actor=COMMUNITY_HANDLER, reason="涉及多个社区")
    assert s.stage == Stage.area and s.owner_unit == AREA
    assert (await events(pool, s))[-1].detail["reason"] == "涉及多个社区"


async def test_area_duty_stays_at_area(dev_env, tq, pool):
    h = await start(dev_env.client, tq, "shared-bikes")
    s = await act(h, "escalate", actor=GRID_WORKER, reason="x")
    assert s.stage == Stage.area  # the community passed it on by the duty list
    auto = [e for e in await events(pool, s) if e.kind == "auto_escalated"]
    assert len(auto) == 1 and "duty list" in auto[0].detail["reason"]
    s = await act(h, "resolve", actor=AREA_HANDLER, summary="片区协调清理")
    assert s.stage == Stage.feedback and s.resolved_by == [AREA]


async def test_street_duty_is_resolved_by_the_street(dev_env, tq, pool):
    h = await start(dev_env.client, tq, "garbage-collection")
    s = await act(h, "escalate", actor=GRID_WORKER, reason="x")
    assert s.stage == Stage.street and s.owner_unit == STREET
    assert [e.stage_to for e in (await events(pool, s))[-3:]] == [Stage.community, Stage.area, Stage.street]
    s = await act(h, "resolve", actor=STREET_HANDLER, summary="清运")
    assert s.resolved_by == [STREET]


async def test_negative_list_item_climbs_with_the_reason_recorded(dev_env, tq, pool):
    h = await start(dev_env.client, tq, "illegal-construction")
    s = await act(h, "escalate", actor=GRID_WORKER, reason="违建")
    assert s.stage == Stage.street
    reasons = [e.detail["reason"] for e in await events(pool, s) if e.kind == "auto_escalated"]
    assert any("negative list" in r for r in reasons)


async def test_street_dispatches_by_mapping_and_all_departments_must_resolve(dev_env, tq, pool, demo):
    cat = demo.category("illegal-construction")
    h = await start(dev_env.client, tq, cat.id)
    await act(h, "escalate", actor=GRID_WORKER, reason="违建")
    s = await act(h, "dispatch", actor=STREET_HANDLER)
    assert s.stage == Stage.department
    assert [(a.department_id, a.role) for a in s.assignments] == [
        (cat.lead_department, "lead"), *[(d, "cooperating") for d in cat.cooperating_departments]
    ]
    assert all(a.accept_due and a.resolve_due for a in s.assignments)
    departments = [a.department_id for a in s.assignments]
    for d in departments:
        await act(h, "accept", actor=dept(d))
    s = await act(h, "resolve", actor=dept(departments[0]), summary="拆除")
    assert s.stage == Stage.department and s.owners == departments[1:]  # not resolved until all have
    for d in departments[1:]:
        s = await act(h, "resolve", actor=dept(d), summary="配合完成")
    assert s.stage == Stage.feedback and s.resolved_by == departments
    s = await act(h, "feedback", actor=RESIDENT, satisfied=True)
    assert s.stage == Stage.closed

    # The read model holds every event once, in order, and the final snapshot.
    async with pool.acquire() as conn:
        rows = await conn.fetch(queries.SELECT_EVENTS, s.issue_id)
        issue = await conn.fetchrow(queries.SELECT_ISSUE, s.issue_id)
        assignments = await conn.fetch(queries.SELECT_ASSIGNMENTS, s.issue_id)
    assert [r["seq"] for r in rows] == list(range(1, s.seq + 1))
    n = len(departments)
    assert [r["kind"] for r in rows] == [
        "intake", "escalated", "auto_escalated", "auto_escalated", "dispatched", *["accepted"] * n, *["resolved"] * n, "feedback",
    ]
    assert rows[-1]["stage_to"] == "closed" and rows[4]["detail"]["lead"] == cat.lead_department
    assert issue["stage"] == "closed" and issue["seq"] == s.seq and issue["outcome"] == "satisfied"
    assert issue["street_id"] == STREET and issue["snapshot"]["stage"] == "closed"
    assert sorted(r["department_id"] for r in assignments) == sorted(departments)
    assert all(r["status"] == "resolved" and r["accepted_at"] for r in assignments)


async def test_dispatch_override_needs_a_reason_and_is_recorded(dev_env, tq, pool):
    h = await start(dev_env.client, tq, "illegal-construction")
    await act(h, "escalate", actor=GRID_WORKER, reason="x")
    s = await act(h, "dispatch", actor=STREET_HANDLER, lead_department="zhujian", cooperating_departments=[], reason="主体为住建")
    assert [a.department_id for a in s.assignments] == ["zhujian"]
    last = (await events(pool, s))[-1]
    assert last.detail["override"] is True and last.detail["reason"] == "主体为住建"


async def test_decline_is_arbitrated_by_the_supervisor(dev_env, tq):
    h = await start(dev_env.client, tq, "tree-trimming")
    await act(h, "escalate", actor=GRID_WORKER, reason="x")
    s = await act(h, "dispatch", actor=STREET_HANDLER)
    lead = s.assignments[0].department_id
    s = await act(h, "decline", actor=dept(lead), reason="非本部门职责")
    assert s.stage == Stage.arbitration and s.owner_unit == "supervisor"
    s = await act(h, "assign", actor=SUPERVISOR, department_id=lead, to_department="chengguan", reason="城管牵头")
    assert s.stage == Stage.department
    assert [(a.department_id, a.status) for a in s.assignments if a.role == "lead"] == [
        (lead, AssignmentStatus.withdrawn), ("chengguan", AssignmentStatus.pending)
    ]
    # Overruling a decline: assign back to the same department opens a new round.
    s = await act(h, "decline", actor=dept("chengguan"), reason="也不是我们")
    s = await act(h, "assign", actor=SUPERVISOR, department_id="chengguan", to_department="chengguan", reason="驳回")
    assert s.assignment("chengguan").round == 2 and s.assignment("chengguan").status == AssignmentStatus.pending


async def test_dissatisfied_reopens_to_the_same_unit_then_review(dev_env, tq, demo):
    assert demo.policies.max_reopens == 2
    h = await start(dev_env.client, tq, "corridor-clutter")
    await act(h, "escalate", actor=GRID_WORKER, reason="x")
    for n in (1, 2):
        await act(h, "resolve", actor=COMMUNITY_HANDLER, summary=f"第{n}次")
        s = await act(h, "feedback", actor=RESIDENT, satisfied=False, comment="没解决")
        assert s.stage == Stage.community and s.reopens == n and s.reopens_by_unit == {COMMUNITY: n}
    await act(h, "resolve", actor=COMMUNITY_HANDLER, summary="第3次")
    s = await act(h, "feedback", actor=RESIDENT, satisfied=False)
    assert s.stage == Stage.review and s.owner_unit == "supervisor" and s.reopens == 2
    s = await act(h, "review", actor=SUPERVISOR, decision="reassign", to_department="chengguan", reason="交城管")
    assert s.stage == Stage.department and s.assignments[-1].department_id == "chengguan"
    await act(h, "accept", actor=dept("chengguan"))
    await act(h, "resolve", actor=dept("chengguan"), summary="清理")
    s = await act(h, "feedback", actor=RESIDENT, satisfied=False)
    assert s.stage == Stage.review  # past the reopen limit, every dissatisfaction is reviewed
    s = await act(h, "review", actor=SUPERVISOR, decision="close", reason="已尽力")
    assert s.stage == Stage.closed and s.outcome == Outcome.closed_by_review
    assert (await asyncio.wait_for(h.result(), 10)).stage == Stage.closed  # the workflow ends too


async def test_department_reopen_keeps_its_assignment_accepted(dev_env, tq):
    h = await start(dev_env.client, tq, "tree-trimming")
    await act(h, "escalate", actor=GRID_WORKER, reason="x")
    s = await act(h, "dispatch", actor=STREET_HANDLER)
    lead = s.assignments[0].department_id
    await act(h, "accept", actor=dept(lead))
    await act(h, "resolve", actor=dept(lead), summary="检查")
    s = await act(h, "feedback", actor=RESIDENT, satisfied=False)
    a = s.assignment(lead)
    assert s.stage == Stage.department and a.round == 2 and a.status == AssignmentStatus.accepted
    assert s.reopens_by_unit == {lead: 1}
    s = await act(h, "resolve", actor=dept(lead), summary="复查")
    assert s.stage == Stage.feedback


async def test_urge_notifies_the_owner(dev_env, demo, pool):
    from activities.notifier import MemoryNotifier

    notes = MemoryNotifier()
    async with issue_worker(dev_env.client, demo, pool, notes) as tq:
        h = await start(dev_env.client, tq, "corridor-clutter")
        s = await act(h, "urge", actor=SUPERVISOR, note="尽快处理")
    assert s.urges == 1 and (await events(pool, s))[-1].kind == "urged"
    assert [(n.kind, n.unit_id) for n in notes.sent] == [("urge", GRID)]


async def test_urgent_whistle_uses_the_urgent_accept_deadline(dev_env, tq, demo):
    h = await start(dev_env.client, tq, "food-safety")
    await act(h, "escalate", actor=GRID_WORKER, reason="x", urgent=True)
    s = await act(h, "dispatch", actor=STREET_HANDLER)
    a = s.assignments[0]
    assert a.urgent and a.accept_due - a.assigned_at == demo.policies.urgent_accept.duration


async def test_search_attributes_follow_the_state(dev_env, tq):
    h = await start(dev_env.client, tq, "illegal-construction")
    await act(h, "escalate", actor=GRID_WORKER, reason="x")
    s = await act(h, "dispatch", actor=STREET_HANDLER)
    sa = (await h.describe()).typed_search_attributes
    from whistle.temporal import CATEGORY, CHANNEL, DUE_AT, ISSUE_STAGE, OVERDUE, OWNER_UNIT
    from whistle.temporal import STREET as STREET_SA

    assert sa.get(ISSUE_STAGE) == "department" and sa.get(OWNER_UNIT) == s.owner_unit
    assert sa.get(STREET_SA) == STREET and sa.get(CATEGORY) == "illegal-construction" and sa.get(CHANNEL) == "hotline"
    assert sa.get(OVERDUE) is False and sa.get(DUE_AT) == s.due_at
    found = await listed(dev_env.client, f'IssueStage="department" AND Street="{STREET}" AND WorkflowId="{h.id}"')
    assert [w.id for w in found] == [h.id]


async def test_a_reopen_goes_back_to_the_departments_of_the_current_dispatch(dev_env, tq):
    """lvhua resolves; the resident is unhappy; lvhua declines the reopened work and the
    supervisor gives it to chengguan, who resolves. A second complaint goes to chengguan only."""
    h = await start(dev_env.client, tq, "tree-trimming")
    await act(h, "escalate", actor=GRID_WORKER, reason="x")
    await act(h, "dispatch", actor=STREET_HANDLER)
    await act(h, "accept", actor=dept("lvhua"))
    await act(h, "resolve", actor=dept("lvhua"), summary="剪了")
    await act(h, "feedback", actor=RESIDENT, satisfied=False)
    await act(h, "decline", actor=dept("lvhua"), reason="需城管处理")
    await act(h, "assign", actor=SUPERVISOR, department_id="lvhua", to_department="chengguan", reason="城管牵头")
    await act(h, "accept", actor=dept("chengguan"))
    s = await act(h, "resolve", actor=dept("chengguan"), summary="清理")
    assert s.resolved_by == ["chengguan"]
    s = await act(h, "feedback", actor=RESIDENT, satisfied=False)
    assert s.reopens_by_unit == {"lvhua": 1, "chengguan": 1}
    assert [(a.department_id, a.status) for a in s.assignments if a.status != AssignmentStatus.withdrawn][-1] == (
        "chengguan", AssignmentStatus.accepted)
    assert {a.status for a in s.assignments if a.department_id == "lvhua"} == {
        AssignmentStatus.resolved, AssignmentStatus.withdrawn}  # no new round for lvhua
