"""/v1: intake, reads, scoped lists, actions, errors, limits, and reporters' data."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest
from temporalio.client import Client

from tests.api_support import key, serve_api
from tests.helpers import answers, listed

HOTLINE = key("hotline-12345")
GRID = key("grid-heping-a1-c1-g1")
STREET = key("street-heping")
OTHER_STREET = key("street-donghua")
SUPERVISOR = key("supervisor")
OPS = key("ops")
PHONE = "13987654321"


@pytest.fixture
async def api(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as a:
        yield a


def intake(**extra):
    body = {
        "channel": "hotline", "reference": f"h-{uuid.uuid4().hex[:10]}", "category": "tree-trimming",
        "grid_id": "heping-a1-c1-g1", "description": "树枝挡住人行道",
    }
    return body | extra


async def submit(api, headers=HOTLINE, **extra):
    r = await api.http.post("/v1/issues", json=intake(**extra), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def act(api, issue_id, action, headers, **body):
    return await api.http.post(f"/v1/issues/{issue_id}/actions/{action}", json=body, headers=headers)


async def test_healthz_and_openapi(api):
    assert (await answers(api.http, "/healthz", lambda r: r.status_code == 200)).json() == {"status": "ok"}
    doc = (await api.http.get("/openapi.json")).json()
    for path in ("/v1/issues", "/v1/issues/{issue_id}", "/v1/issues/{issue_id}/actions/escalate", "/v1/categories", "/v1/units", "/healthz"):
        assert path in doc["paths"]
    assert (await api.http.get("/docs")).status_code == 200


async def test_intake_creates_then_returns_the_same_issue(api):
    body = intake()
    first = await api.http.post("/v1/issues", json=body, headers=HOTLINE)
    again = await api.http.post("/v1/issues", json=body, headers=HOTLINE)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["issue_id"] == again.json()["issue_id"] == f"hotline-{body['reference']}"
    assert first.json()["feedback_token"] == again.json()["feedback_token"]
    assert first.json()["issue"]["stage"] == "grid"


async def test_an_intake_the_workers_refuse_is_422_with_their_reason(api, demo):
    """The API's jurisdiction knows a category the workers' does not (a half-rolled change):
    the run fails at registration and the intake says why, not a 500 or a 503 to retry."""
    ghost = demo.categories[0].model_copy(update={"id": "ghost-category"})
    api.app.state.deps.jurisdiction = demo.model_copy(update={"categories": [*demo.categories, ghost]})
    r = await api.http.post("/v1/issues", json=intake(category="ghost-category"), headers=HOTLINE)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "the issue was refused: unknown category 'ghost-category'"


async def test_the_issue_view_shows_no_workflow_internals(api):
    """The API's issue is the public view: where it stands and who holds it, not the workflow's
    policies, clocks, counters or events (those are in the read model)."""
    issue = (await api.http.post("/v1/issues", json=intake(), headers=HOTLINE)).json()["issue"]
    internals = {"context", "deadlines", "reminders", "cycle", "runs", "reopens_by_unit", "resolved_stage", "history"}
    assert not internals & issue.keys()
    assert issue["street_id"] == "heping" and issue["seq"] == 1 and issue["owners"] == [issue["owner_unit"]]
    schema = (await api.http.get("/openapi.json")).json()["components"]["schemas"]["IssueView"]
    assert not internals & schema["properties"].keys() and {"stage", "owners", "due_at", "seq"} <= schema["properties"].keys()


async def test_an_issue_s_events_come_from_the_read_model_within_scope(api):
    iid = (await submit(api))["issue_id"]
    await act(api, iid, "escalate", GRID, reason="需部门处理")
    r = await api.http.get(f"/v1/issues/{iid}/events", headers=GRID)
    assert r.status_code == 200, r.text
    events = r.json()
    assert [e["kind"] for e in events][:2] == ["intake", "escalated"] and [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[1]["actor_role"] == "grid" and events[1]["detail"]["reason"] == "需部门处理"
    assert (await api.http.get(f"/v1/issues/{iid}/events", headers=OTHER_STREET)).status_code == 404  # as for no issue


async def test_fifty_concurrent_submissions_one_workflow(api, dev_env):
    body = intake()
    answers = await asyncio.gather(*(api.http.post("/v1/issues", json=body, headers=HOTLINE) for _ in range(50)))
    assert sorted(r.status_code for r in answers) == [200] * 49 + [201]
    assert {r.json()["issue_id"] for r in answers} == {f"hotline-{body['reference']}"}
    runs = await listed(dev_env.client, f'WorkflowId="issue-hotline-{body["reference"]}"')
    assert len(runs) == 1


async def test_location_by_coordinates_and_address(api, demo):
    grid = demo.unit("donghua-a2-c3-g1")
    by_coords = await submit(api, grid_id=None, lat=grid.lat, long=grid.long)
    assert by_coords["issue"]["grid_id"] == grid.id
    community = demo.unit(grid.parent)
    by_address = await submit(api, grid_id=None, address=f"北京市示范区{community.name}3号楼")
    assert by_address["issue"]["grid_id"].startswith(community.id)


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"category": "unicorns"}, 422, "unknown category"),
        ({"grid_id": None, "lat": 31.23, "long": 121.47}, 422, "outside the jurisdiction"),
        ({"grid_id": None, "address": "火星基地"}, 422, "names no community or grid"),
        ({"grid_id": None}, 422, "give a location"),
        ({"grid_id": "nowhere"}, 422, "unknown grid"),
        ({"description": "长" * 4001}, 422, "description"),
        ({"description": ""}, 422, "description"),
        ({"reference": "has spaces"}, 422, "reference"),
        ({"channel": "pigeon"}, 422, "channel"),
        ({"category": "noise"}, 422, "attributes.time_of_day"),
        ({"category": "noise", "attributes": {"time_of_day": "凌晨"}}, 422, "must be one of"),
        ({"reporter": {"phone": "call me"}}, 422, "reporter.phone"),
        ({"surprise": True}, 422, "surprise"),
        ({"channel": "wechat"}, 403, "channel hotline"),
    ],
)
async def test_bad_intake_is_a_4xx_with_a_reason(api, change, status, says):
    r = await api.http.post("/v1/issues", json=intake(**change), headers=HOTLINE)
    assert r.status_code == status, r.text
    assert says in json.dumps(r.json(), ensure_ascii=False)


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({}, None, 401),
        ({"X-API-Key": "nope"}, None, 401),
        (OPS, None, 403),
        (key("dept-chengguan"), None, 403),
        (HOTLINE, b"{not json", 422),
        (HOTLINE, b"[1, 2]", 422),
        (HOTLINE, b"{}", 422),
    ],
)
async def test_intake_auth_and_malformed_bodies(api, headers, content, status):
    if content is None:
        r = await api.http.post("/v1/issues", json=intake(), headers=headers)
    else:
        r = await api.http.post("/v1/issues", content=content, headers=headers | {"content-type": "application/json"})
    assert r.status_code == status and r.json()["error"]


async def test_oversized_body_is_413(api):
    r = await api.http.post("/v1/issues", content=b"{" + b" " * 70_000 + b"}", headers=HOTLINE | {"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]


async def test_read_is_scoped_and_personal_data_only_for_handlers(api):
    issue = await submit(api, reporter={"name": "张三", "phone": PHONE})
    url = f"/v1/issues/{issue['issue_id']}"
    assert (await api.http.get(url, headers=SUPERVISOR)).json()["reporter"]["phone"] == PHONE
    assert (await api.http.get(url, headers=GRID)).json()["reporter"]["phone"] == PHONE
    assert (await api.http.get(url, headers=OPS)).json()["reporter"] is None  # ops watch, not call
    assert (await api.http.get(url, headers=HOTLINE)).json()["reporter"] is None
    assert (await api.http.get(url, headers=OTHER_STREET)).status_code == 404  # as if there were none
    assert (await api.http.get(url, headers=key("dept-chengguan"))).status_code == 404  # not assigned
    assert (await api.http.get("/v1/issues/hotline-never", headers=SUPERVISOR)).status_code == 404
    assert (await api.http.get(url)).status_code == 401


async def test_lists_are_scoped_and_filtered(api):
    ours = await submit(api)
    theirs = await submit(api, grid_id="donghua-a1-c1-g1")
    await asyncio.sleep(0.3)  # the read model follows the workflow within milliseconds

    async def ids(headers, **params):
        r = await api.http.get("/v1/issues", headers=headers, params=params | {"limit": 1000})
        assert r.status_code == 200, r.text
        return {row["issue_id"] for row in r.json()["issues"]}

    assert ours["issue_id"] in await ids(STREET) and theirs["issue_id"] not in await ids(STREET)
    assert theirs["issue_id"] in await ids(OTHER_STREET) and ours["issue_id"] not in await ids(OTHER_STREET)
    assert {ours["issue_id"], theirs["issue_id"]} <= await ids(SUPERVISOR)
    assert ours["issue_id"] in await ids(SUPERVISOR, stage="grid", overdue="false")
    assert ours["issue_id"] not in await ids(SUPERVISOR, stage="closed")
    assert ours["issue_id"] not in await ids(key("dept-chengguan"))
    bad = await api.http.get("/v1/issues", headers=SUPERVISOR, params={"limit": 0})
    assert bad.status_code == 422


async def test_an_issue_from_intake_to_closed_over_http(api):
    issue = await submit(api, reporter={"phone": PHONE})  # a resident to ask: a feedback token
    iid = issue["issue_id"]
    r = await act(api, iid, "escalate", GRID, reason="需部门处理")
    assert r.status_code == 200 and r.json()["stage"] == "street"
    r = await act(api, iid, "dispatch", STREET)
    assert r.json()["stage"] == "department"
    dept = key(f"dept-{r.json()['assignments'][0]['department_id']}")
    assert (await act(api, iid, "accept", dept)).status_code == 200
    assert (await act(api, iid, "resolve", dept, summary="已修剪")).json()["stage"] == "feedback"
    # The resident answers with the token from intake, no API key.
    bad = await api.http.post(f"/v1/issues/{iid}/actions/feedback", json={"satisfied": True}, headers={"X-Feedback-Token": "forged"})
    assert bad.status_code == 401
    r = await api.http.post(
        f"/v1/issues/{iid}/actions/feedback", json={"satisfied": True}, headers={"X-Feedback-Token": issue["feedback_token"]}
    )
    assert r.status_code == 200 and r.json()["stage"] == "closed" and r.json()["outcome"] == "satisfied"
    r = await act(api, iid, "urge", SUPERVISOR, note="x")
    assert r.status_code == 409 and "closed" in r.json()["error"]


async def test_action_errors(api):
    iid = (await submit(api))["issue_id"]
    r = await act(api, iid, "dispatch", STREET)
    assert r.status_code == 409 and "stage grid" in r.json()["error"]
    r = await act(api, iid, "escalate", OPS, reason="x")
    assert r.status_code == 403 and "allowed" in r.json()["error"]
    # Out of scope: 404, as for no issue, before the workflow is asked (the stage is not revealed).
    r = await act(api, iid, "escalate", OTHER_STREET, reason="x")
    assert r.status_code == 404 and "grid" not in r.text
    r = await act(api, iid, "escalate", key("grid-other"), reason="x")
    assert r.status_code == 404
    assert (await act(api, "hotline-never", "escalate", GRID, reason="x")).status_code == 404
    assert (await act(api, iid, "teleport", GRID)).status_code == 404
    r = await act(api, iid, "escalate", GRID)  # no reason
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reason"
    r = await act(api, iid, "escalate", GRID, reason="x", actor={"id": "x", "role": "supervisor"})
    assert r.status_code == 422 and "actor" in json.dumps(r.json())
    r = await api.http.post(f"/v1/issues/{iid}/actions/escalate", content=b"[]", headers=GRID | {"content-type": "application/json"})
    assert r.status_code == 422
    assert (await act(api, iid, "escalate", {}, reason="x")).status_code == 401


async def test_categories_and_units(api, demo):
    cats = (await api.http.get("/v1/categories")).json()
    assert len(cats) == len(demo.categories) and {"id", "name", "lead_department"} <= set(cats[0])
    units = (await api.http.get("/v1/units")).json()
    assert len(units["units"]) == len(demo.units) and len(units["departments"]) == len(demo.departments)


async def test_rate_limit_per_address_and_per_key(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool, rate_limit_address="5/minute", rate_limit_key="3/minute") as a:
        codes = [(await a.http.get("/v1/issues", headers=SUPERVISOR)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = await a.http.get("/v1/issues", headers=SUPERVISOR)
        assert r.status_code == 429 and "rate limit" in r.json()["error"] and r.headers["Retry-After"]
        codes = [(await a.http.get("/v1/categories")).status_code for _ in range(2)]
        assert codes[-1] == 429  # the address has used its 5 by now


async def test_reporter_data_absent_from_raw_history_and_logs(api, dev_env, caplog):
    caplog.set_level(logging.DEBUG)
    issue = await submit(api, reporter={"name": "李四", "phone": PHONE, "email": "lisi@example.cn"})
    await act(api, issue["issue_id"], "escalate", GRID, reason="r")
    # The history as the server holds it, read without the codec.
    raw = await Client.connect(dev_env.client.service_client.config.target_host)
    history = await raw.get_workflow_handle(issue["workflow_id"]).fetch_history()
    dumped = history.to_json()
    assert PHONE not in dumped and "lisi@example.cn" not in dumped and "李四" not in dumped
    assert "binary/encrypted" in json.dumps([e.workflow_execution_started_event_attributes.input.payloads[0].metadata["encoding"].decode() for e in history.events[:1]])
    logged = caplog.text + "".join(str(r.msg) for r in caplog.records)
    assert PHONE not in logged and "lisi@example.cn" not in logged


async def test_codec_server_decodes_for_ops(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool, codec_server_auth=True) as a:
        plain = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "InNlY3JldCI="}]}
        assert (await a.http.post("/codec/encode", json=plain)).status_code == 401
        assert (await a.http.post("/codec/encode", json=plain, headers=GRID)).status_code == 403
        encoded = (await a.http.post("/codec/encode", json=plain, headers={"Authorization": "Bearer key-ops"})).json()
        assert encoded["payloads"][0]["data"] != plain["payloads"][0]["data"]
        decoded = (await a.http.post("/codec/decode", json=encoded, headers=OPS)).json()
        assert decoded["payloads"][0]["data"] == plain["payloads"][0]["data"]


async def test_resubmission_does_not_reveal_an_issue_outside_scope(api):
    body = intake(channel="walkin")
    r = await api.http.post("/v1/issues", json=body, headers=GRID)  # a grid worker takes a walk-in
    assert r.status_code == 201
    r = await api.http.post("/v1/issues", json=body | {"grid_id": "donghua-a1-c1-g1"}, headers=OTHER_STREET)
    assert r.status_code == 409 and "feedback_token" not in r.text and "exists" in r.json()["error"]
    r = await api.http.post("/v1/issues", json=intake(), headers=GRID)  # handlers don't submit hotline calls
    assert r.status_code == 403 and "patrol or walkin" in r.json()["error"]


async def test_odd_feedback_tokens_are_401_not_500(api):
    iid = (await submit(api))["issue_id"]
    for token in ("令牌", "x" * 300):
        r = await api.http.post(f"/v1/issues/{iid}/actions/feedback", json={"satisfied": True},
                                headers={"X-Feedback-Token": token.encode()})
        assert r.status_code == 401
