"""Authorisation matrix over HTTP: each principal × each action, own unit and another's, on an
issue dispatched to one department (lvhua). 404 = outside this principal's scope (answered as
for no issue); 403 = not its role; 409 = may, but not now; 200 = done (each success on a fresh
issue)."""

from __future__ import annotations

import pytest

from tests.conftest import read_model
from tests.api_support import key, serve_api
from tests.test_api import act, submit

PRINCIPALS = {
    "grid-own": "grid-heping-a1-c1-g1",
    "grid-other": "grid-other",
    "community-own": "community-heping-a1-c1",
    "community-other": "community-other",
    "area-own": "area-heping-a1",
    "street-own": "street-heping",
    "street-other": "street-donghua",
    "dept-own": "dept-lvhua",
    "dept-other": "dept-chengguan",
    "supervisor": "supervisor",
    "ops": "ops",
    "intake": "hotline-12345",
}
LADDER = ("grid-own", "community-own", "area-own", "street-own")  # the issue's own chain
OUTSIDE = ("grid-other", "community-other", "street-other", "dept-other")  # may not see the issue at all

ACTIONS = {
    "accept": ({}, {"dept-own": 200}),
    "decline": ({"reason": "非本部门"}, {"dept-own": 200}),
    "request_extension": ({"extend_by": "2WD", "reason": "审批"}, {"dept-own": 200}),
    "resolve": ({"summary": "done"}, {"dept-own": 409, **{p: 409 for p in LADDER}}),
    "escalate": ({"reason": "r"}, {p: 409 for p in LADDER}),
    "dispatch": ({}, {"street-own": 409}),
    "urge": ({"note": "督办"}, {"supervisor": 200}),
    "decide_extension": ({"department_id": "lvhua", "approve": True}, {"supervisor": 409}),
    "assign": ({"department_id": "lvhua", "to_department": "chengguan", "reason": "r"}, {"supervisor": 409}),
    "feedback": ({"satisfied": True}, {}),  # residents use their token, never an API key
    "review": ({"decision": "close", "reason": "r"}, {"supervisor": 409}),
}
CASES = [(action, who) for action in ACTIONS for who in PRINCIPALS]


@pytest.fixture(scope="module")
async def matrix_api(dev_env, demo, pg_server):
    async with read_model(pg_server, demo) as pool:
        async with serve_api(dev_env, demo, pool) as api:
            api.shared = await dispatched(api)
            yield api


async def dispatched(api) -> str:
    iid = (await submit(api))["issue_id"]  # tree-trimming: lead lvhua, nobody cooperating
    assert (await act(api, iid, "escalate", key("grid-heping-a1-c1-g1"), reason="r")).status_code == 200
    r = await act(api, iid, "dispatch", key("street-heping"))
    assert [a["department_id"] for a in r.json()["assignments"]] == ["lvhua"]
    return iid


@pytest.mark.parametrize(("action", "who"), CASES, ids=[f"{a}-{w}" for a, w in CASES])
async def test_matrix(matrix_api, action, who):
    payload, exceptions = ACTIONS[action]
    expected = exceptions.get(who, 404 if who in OUTSIDE else 403)
    iid = await dispatched(matrix_api) if expected == 200 else matrix_api.shared
    r = await act(matrix_api, iid, action, key(PRINCIPALS[who]), **payload)
    assert r.status_code == expected, r.text
    if expected != 200:
        assert r.json()["error"]  # says why
