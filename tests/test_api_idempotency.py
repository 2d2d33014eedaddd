"""Actions are idempotent under client retries (Idempotency-Key), and trouble behind the API
is a JSON 503/504, never a plain-text 500."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RetryConfig

from api.app import build_deps, create_app
from tests.api_support import key, serve_api
from tests.helpers import listed
from tests.test_api import GRID, HOTLINE, STREET, SUPERVISOR, act, submit
from whistle.config import Settings
from whistle.db import queries


@pytest.fixture
async def api(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as a:
        yield a


async def events(pool, issue_id: str, kind: str) -> int:
    async with pool.acquire() as conn:
        rows = await conn.fetch(queries.SELECT_EVENTS, issue_id)
    return sum(1 for r in rows if r["kind"] == kind)


async def test_a_retried_action_is_applied_once_and_answers_the_same(api, pool):
    iid = (await submit(api))["issue_id"]
    once = {"Idempotency-Key": "urge-1"}
    first = await act(api, iid, "urge", SUPERVISOR | once, note="请尽快")
    again = await act(api, iid, "urge", SUPERVISOR | once, note="请尽快")
    assert first.status_code == again.status_code == 200
    assert first.json()["urges"] == again.json()["urges"] == 1
    assert await events(pool, iid, "urged") == 1
    # A new key is a new action.
    third = await act(api, iid, "urge", SUPERVISOR | {"Idempotency-Key": "urge-2"}, note="请尽快")
    assert third.json()["urges"] == 2 and await events(pool, iid, "urged") == 2


async def test_concurrent_retries_apply_once(api, pool):
    iid = (await submit(api))["issue_id"]
    tries = [act(api, iid, "urge", SUPERVISOR | {"Idempotency-Key": "same"}, note="x") for _ in range(8)]
    answers = await asyncio.gather(*tries)
    assert {r.status_code for r in answers} == {200}
    assert {r.json()["urges"] for r in answers} == {1}
    assert await events(pool, iid, "urged") == 1


async def test_a_retry_of_an_applied_transition_is_not_a_409(api):
    """Without the key a repeated escalate is refused for the state it caused; with it the
    retry gets the original answer."""
    iid = (await submit(api))["issue_id"]
    k = {"Idempotency-Key": "esc-1"}
    first = await act(api, iid, "escalate", GRID | k, reason="需部门处理")
    again = await act(api, iid, "escalate", GRID | k, reason="需部门处理")
    assert first.status_code == again.status_code == 200
    assert again.json()["stage"] == first.json()["stage"] == "street"
    assert (await act(api, iid, "escalate", GRID, reason="需部门处理")).status_code == 409
    # Even once the issue has moved on, the retry answers what the action did.
    assert (await act(api, iid, "dispatch", STREET)).status_code == 200
    late = await act(api, iid, "escalate", GRID | k, reason="需部门处理")
    assert late.status_code == 200 and late.json()["stage"] == "street"


async def test_a_key_is_bound_to_its_sender_and_body(api, pool):
    iid = (await submit(api))["issue_id"]
    k = {"Idempotency-Key": "shared"}
    assert (await act(api, iid, "urge", SUPERVISOR | k, note="a")).json()["urges"] == 1
    # Same key, another body: another request.
    assert (await act(api, iid, "urge", SUPERVISOR | k, note="b")).json()["urges"] == 2
    # Same key and body from another principal must not pick up the supervisor's outcome.
    r = await act(api, iid, "escalate", key("grid-heping-a1-c1-g1") | k, reason="x")
    assert r.status_code == 200 and r.json()["stage"] == "street"


async def test_a_malformed_key_is_422(api):
    iid = (await submit(api))["issue_id"]
    r = await act(api, iid, "urge", SUPERVISOR | {"Idempotency-Key": "x" * 200}, note="x")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "Idempotency-Key"


async def test_temporal_unreachable_is_a_json_503(demo, pool):
    """A client whose Temporal is gone: every route that needs it answers JSON, not text."""
    from tests.conftest import CONVERTER

    from whistle.console.dev import find_binary
    from temporalio.testing import WorkflowEnvironment
    from tests.api_support import store

    env = await WorkflowEnvironment.start_local(data_converter=CONVERTER, dev_server_existing_path=str(find_binary("temporal")))
    # The client stays, its server goes. (Few retries: the SDK's default retries for ~10 s first.)
    client = await Client.connect(env.client.service_client.config.target_host, data_converter=CONVERTER,
                                  retry_config=RetryConfig(max_retries=1))
    await env.shutdown()
    s = Settings(task_queue="nowhere", token_secret="t", codec_server=False)
    deps = build_deps(s, client, pool, demo)
    deps.principals = store(demo)
    app = create_app(deps, s)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://whistle.test", timeout=60) as http:
        r = await http.get("/v1/issues/hotline-x1", headers=SUPERVISOR)
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/json"), r.text
        assert "retry" in r.json()["error"] and r.headers["Retry-After"]
        r = await http.post("/v1/issues/hotline-x1/actions/urge", json={"note": "x"}, headers=SUPERVISOR)
        assert r.status_code in (503, 504) and r.headers["content-type"].startswith("application/json"), r.text
        r = await http.post("/v1/issues", json={
            "channel": "hotline", "reference": "x1", "category": "tree-trimming", "grid_id": "heping-a1-c1-g1",
            "description": "树枝"}, headers=HOTLINE)
        assert r.status_code == 503 and r.json()["error"], r.text


async def test_an_intake_no_worker_registers_in_time_is_503_and_safe_to_submit_again(dev_env, demo, pool):
    """No worker on the queue: after WHISTLE_REGISTER_TIMEOUT (1 s here), 503 saying that
    submitting again is safe; once a worker runs, the same intake answers with the one issue."""
    from tests.api_support import store
    from tests.conftest import issue_worker

    tq = f"tq-idle-{uuid.uuid4().hex[:8]}"
    s = Settings(task_queue=tq, token_secret="t", codec_server=False, register_timeout=1)
    deps = build_deps(s, dev_env.client, pool, demo)
    deps.principals = store(demo)
    transport = httpx.ASGITransport(app=create_app(deps, s), client=("127.0.0.1", 50002))
    body = {"channel": "hotline", "reference": f"idle-{uuid.uuid4().hex[:6]}", "category": "tree-trimming",
            "grid_id": "heping-a1-c1-g1", "description": "树枝"}
    async with httpx.AsyncClient(transport=transport, base_url="http://whistle.test", timeout=60) as http:
        r = await http.post("/v1/issues", json=body, headers=HOTLINE)
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        assert "submit it again" in r.json()["error"]
        async with issue_worker(dev_env.client, demo, pool, task_queue=tq):
            again = await http.post("/v1/issues", json=body, headers=HOTLINE)
        assert again.status_code == 200, again.text  # the first call's start stood: not a second issue
        assert again.json()["issue"]["stage"] == "grid"
    runs = await listed(dev_env.client, f'WorkflowId="issue-hotline-{body["reference"]}"')
    assert len(runs) == 1
