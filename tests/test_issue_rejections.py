"""Every update rejected in a wrong state and for a wrong actor; a rejection changes nothing."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.conftest import issue_worker, read_model
from tests.helpers import (
    COMMUNITY, COMMUNITY_HANDLER, GRID_WORKER, RESIDENT, STREET_HANDLER, SUPERVISOR, act, actor, dept, rejected,
    start, state,
)

OPS = actor("ops")
OTHER_GRID = actor("grid", "heping-a1-c2-g1")
OTHER_STREET = actor("street", "donghua")

# (action, payload) pairs for an issue at stage grid.
AT_GRID = [
    ("escalate", {"actor": COMMUNITY_HANDLER, "reason": "r"}, "NotAllowed"),
    ("escalate", {"actor": OTHER_GRID, "reason": "r"}, "Forbidden"),
    ("escalate", {"actor": dept("chengguan"), "reason": "r"}, "Forbidden"),
    ("resolve", {"actor": OPS, "summary": "s"}, "Forbidden"),
    ("resolve", {"actor": RESIDENT, "summary": "s"}, "Forbidden"),
    ("resolve", {"actor": COMMUNITY_HANDLER, "summary": "s"}, "NotAllowed"),
    ("dispatch", {"actor": STREET_HANDLER}, "NotAllowed"),
    ("dispatch", {"actor": COMMUNITY_HANDLER}, "Forbidden"),
    ("dispatch", {"actor": SUPERVISOR}, "Forbidden"),
    ("accept", {"actor": dept("chengguan")}, "NotAllowed"),
    ("accept", {"actor": GRID_WORKER}, "Forbidden"),
    ("decline", {"actor": dept("chengguan"), "reason": "r"}, "NotAllowed"),
    ("decline", {"actor": SUPERVISOR, "reason": "r"}, "Forbidden"),
    ("request_extension", {"actor": dept("chengguan"), "extend_by": "1WD", "reason": "r"}, "NotAllowed"),
    ("request_extension", {"actor": SUPERVISOR, "extend_by": "1WD", "reason": "r"}, "Forbidden"),
    ("decide_extension", {"actor": SUPERVISOR, "department_id": "chengguan", "approve": True}, "NotAllowed"),
    ("decide_extension", {"actor": dept("chengguan"), "department_id": "chengguan", "approve": True}, "Forbidden"),
    ("assign", {"actor": SUPERVISOR, "department_id": "chengguan", "to_department": "zhujian", "reason": "r"}, "NotAllowed"),
    ("assign", {"actor": STREET_HANDLER, "department_id": "chengguan", "to_department": "zhujian", "reason": "r"}, "Forbidden"),
    ("urge", {"actor": GRID_WORKER, "note": "n"}, "Forbidden"),
    ("urge", {"actor": OPS, "note": "n"}, "Forbidden"),
    ("feedback", {"actor": RESIDENT, "satisfied": True}, "NotAllowed"),
    ("feedback", {"actor": SUPERVISOR, "satisfied": True}, "Forbidden"),
    ("review", {"actor": SUPERVISOR, "decision": "close", "reason": "r"}, "NotAllowed"),
    ("review", {"actor": COMMUNITY_HANDLER, "decision": "close", "reason": "r"}, "Forbidden"),
]

# For an issue dispatched to chengguan (lead) and zhujian (cooperating).
AT_DEPARTMENT = [
    ("accept", {"actor": dept("shichang")}, "Forbidden"),  # another department's assignment
    ("resolve", {"actor": dept("chengguan"), "summary": "s"}, "NotAllowed"),  # before report-in
    ("resolve", {"actor": dept("shichang"), "summary": "s"}, "Forbidden"),
    ("decline", {"actor": dept("lvhua"), "reason": "r"}, "Forbidden"),
    ("escalate", {"actor": STREET_HANDLER, "reason": "r"}, "NotAllowed"),
    ("dispatch", {"actor": STREET_HANDLER}, "NotAllowed"),
    ("decide_extension", {"actor": SUPERVISOR, "department_id": "chengguan", "approve": True}, "NotAllowed"),
    ("decide_extension", {"actor": STREET_HANDLER, "department_id": "chengguan", "approve": True}, "Forbidden"),
    ("assign", {"actor": SUPERVISOR, "department_id": "chengguan", "to_department": "lvhua", "reason": "r"}, "NotAllowed"),
    ("request_extension", {"actor": dept("chengguan"), "deadline": "resolve", "extend_by": "1WD", "reason": "r"}, None),
    ("request_extension", {"actor": dept("shichang"), "extend_by": "1WD", "reason": "r"}, "Forbidden"),
    ("feedback", {"actor": RESIDENT, "satisfied": False}, "NotAllowed"),
    ("review", {"actor": SUPERVISOR, "decision": "close", "reason": "r"}, "NotAllowed"),
]


@pytest.fixture(scope="module")
async def issues(dev_env, demo, pg_server):
    """Two issues shared by the table: one at the grid, one dispatched to departments."""
    async with read_model(pg_server, demo) as pool:
        async with issue_worker(dev_env.client, demo, pool) as tq:
            at_grid = await start(dev_env.client, tq, "illegal-construction")
            at_department = await start(dev_env.client, tq, "illegal-construction")
            await act(at_department, "escalate", actor=GRID_WORKER, reason="r")
            await act(at_department, "dispatch", actor=STREET_HANDLER)
            yield {"grid": at_grid, "department": at_department}


async def _check(handle, action, payload, expected):
    before = await state(handle)
    if expected is None:  # the one allowed case in the table: proves the table is not all-reject
        s = await act(handle, action, **payload)
        assert s.seq == before.seq + 1
        return
    err = await rejected(handle, action, **payload)
    assert err.type == expected, err.message
    assert err.message  # says why
    after = await state(handle)
    assert after == before  # changed nothing


@pytest.mark.parametrize(("action", "payload", "expected"), AT_GRID, ids=[f"{a}-{p['actor']['role']}" for a, p, _ in AT_GRID])
async def test_rejected_at_grid(issues, action, payload, expected):
    await _check(issues["grid"], action, payload, expected)


@pytest.mark.parametrize(
    ("action", "payload", "expected"), AT_DEPARTMENT, ids=[f"{a}-{p['actor']['role']}" for a, p, _ in AT_DEPARTMENT]
)
async def test_rejected_at_department(issues, action, payload, expected):
    await _check(issues["department"], action, payload, expected)


async def test_messages_say_why(issues):
    err = await rejected(issues["department"], "accept", actor=dept("shichang"))
    assert "shichang has no assignment" in err.message
    err = await rejected(issues["grid"], "dispatch", actor=COMMUNITY_HANDLER)
    assert "allowed: street" in err.message
    err = await rejected(issues["grid"], "escalate", actor=OTHER_GRID, reason="r")
    assert "heping-a1-c1-g1" in err.message


@pytest.mark.parametrize(
    "payload",
    [
        {},  # no actor
        {"actor": {"id": "x", "role": "community"}, "reason": "r"},  # a community must name its unit
        {"actor": {"id": "x", "role": "king", "unit_id": COMMUNITY}, "reason": "r"},
        {"actor": GRID_WORKER, "reason": ""},  # empty reason
        {"actor": GRID_WORKER, "reason": "r", "surprise": 1},  # unknown field
    ],
)
async def test_malformed_input_is_rejected_and_changes_nothing(issues, payload):
    h = issues["grid"]
    before = await state(h)
    with pytest.raises(WorkflowUpdateFailedError):
        await h.execute_update("escalate", payload)
    assert await state(h) == before


async def test_unknown_department_in_dispatch(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "illegal-construction")
        await act(h, "escalate", actor=GRID_WORKER, reason="r")
        err = await rejected(h, "dispatch", actor=STREET_HANDLER, lead_department="nasa", reason="r")
        assert err.type == "NotAllowed" and "unknown department 'nasa'" in err.message
        err = await rejected(h, "dispatch", actor=OTHER_STREET)
        assert err.type == "Forbidden"
        err = await rejected(h, "dispatch", actor=STREET_HANDLER, cooperating_departments=["chengguan"], reason="r")
        assert "once" in err.message
    assert COMMUNITY  # the chain used above is the demo's heping street


async def test_new_issues_take_rule_book_2_no_feedback_without_a_resident_no_urge_to_strangers(dev_env, demo, pool):
    """A patrol's own finding has no resident: nobody may score it (it closes when the window
    does). An urge names a unit of the issue, not another street's."""
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "corridor-clutter", channel="patrol")
        s = await state(h)
        assert s.rulebook == 2 and not s.has_reporter
        err = await rejected(h, "urge", actor=SUPERVISOR, note="快", unit_id="donghua")
        assert err.type == "NotAllowed" and "donghua has no part in this issue" in err.message
        await act(h, "urge", actor=SUPERVISOR, note="快", unit_id=COMMUNITY)
        await act(h, "resolve", actor=GRID_WORKER, summary="清理")
        err = await rejected(h, "feedback", actor=RESIDENT, satisfied=True)
        assert err.type == "NotAllowed" and "no resident was recorded" in err.message
        assert (await state(h)).stage == "feedback"
