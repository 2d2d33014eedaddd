"""Prometheus metrics: business metrics recorded by the activities (once per event), the
worker's /metrics, /livez and /readyz, the API's request metrics and /healthz."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.issue import IssueActivities
from activities.notifier import MemoryNotifier
from schemas.issue import Stage, TransitionRecord
from schemas.jurisdiction import LevelPolicy
from tests.api_support import key, serve_api
from tests.conftest import issue_worker
from tests.helpers import GRID_WORKER, STREET_HANDLER, act, answers, events, start, state, until, with_policies
from whistle import metrics
from worker import build_worker


def value(name: str, **labels: str) -> float:
    return metrics.WORKER.get_sample_value(name, labels) or 0.0


def api_value(name: str, **labels: str) -> float:
    return metrics.API.get_sample_value(name, labels) or 0.0


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def fast(demo):
    hour = "PT1H"
    return with_policies(
        demo, grid=LevelPolicy(handle=hour), community=LevelPolicy(handle=hour), area=LevelPolicy(handle=hour),
        street=LevelPolicy(handle=hour), department=LevelPolicy(accept="PT2S", resolve="PT1H", reminders=[0.5]),
    )


async def test_an_issue_moves_the_business_metrics(dev_env, fast, pool):
    before = {
        "opened": value("whistle_issues_opened_total", channel="hotline", category="tree-trimming"),
        "missed": value("whistle_transitions_total", kind="deadline_missed"),
        "penalty": value("whistle_penalties_total", unit="lvhua", kind="accept_overdue"),
        "late": value("whistle_deadline_lateness_seconds_count", timer="deadline"),
        "reminder_late": value("whistle_deadline_lateness_seconds_count", timer="reminder"),
        "overdue_sent": value("whistle_notifications_sent_total", kind="overdue"),
        "reminders_sent": value("whistle_notifications_sent_total", kind="reminder"),
    }
    async with issue_worker(dev_env.client, fast, pool) as tq:
        h = await start(dev_env.client, tq, "tree-trimming")
        await act(h, "escalate", actor=GRID_WORKER, reason="r")
        await act(h, "dispatch", actor=STREET_HANDLER)  # lvhua must report in within 2 s: it will not
        await until(h, lambda s: s.stage == Stage.arbitration, timeout=15)
    assert value("whistle_issues_opened_total", channel="hotline", category="tree-trimming") == before["opened"] + 1
    assert value("whistle_transitions_total", kind="deadline_missed") == before["missed"] + 1
    assert value("whistle_penalties_total", unit="lvhua", kind="accept_overdue") == before["penalty"] + 1
    assert value("whistle_deadline_lateness_seconds_count", timer="deadline") == before["late"] + 1
    assert value("whistle_deadline_lateness_seconds_count", timer="reminder") == before["reminder_late"] + 1
    assert value("whistle_notifications_sent_total", kind="overdue") == before["overdue_sent"] + 1
    assert value("whistle_notifications_sent_total", kind="reminder") == before["reminders_sent"] + 1
    # The dev server fires a 2 s timer within a second or two, not an hour late.
    assert value("whistle_deadline_lateness_seconds_bucket", timer="deadline", le="30.0") >= before["late"] + 1


async def test_a_retried_write_counts_a_retry_and_not_the_event_twice(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "noise")
        s = await state(h)
    record = TransitionRecord(event=(await events(pool, s))[-1], state=s)
    activities = IssueActivities(demo, pool, MemoryNotifier())
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=2)
    retries = value("whistle_read_model_write_retries_total", activity="record_transition")
    intakes = value("whistle_transitions_total", kind="intake")
    await env.run(activities.record_transition, record)
    assert value("whistle_read_model_write_retries_total", activity="record_transition") == retries + 1
    assert value("whistle_transitions_total", kind="intake") == intakes  # the event was already recorded


async def test_a_failing_notification_is_counted_and_raised(demo, pool):
    class Down:
        async def send(self, notification):
            raise httpx.ConnectError("webhook down")

    from datetime import UTC, datetime

    from schemas.issue import Notification

    n = Notification(kind="urge", issue_id="hotline-X", unit_id="lvhua", message="督办", at=datetime.now(UTC), seq=3)
    failed = value("whistle_notifications_failed_total", kind="urge")
    sent = value("whistle_notifications_sent_total", kind="urge")
    with pytest.raises(httpx.ConnectError):
        await ActivityEnvironment().run(IssueActivities(demo, pool, Down()).notify, n)
    assert value("whistle_notifications_failed_total", kind="urge") == failed + 1
    assert value("whistle_notifications_sent_total", kind="urge") == sent


async def test_worker_endpoint_serves_metrics_and_says_when_it_is_not_ready(dev_env, demo, pool):
    address = free_address()
    async with issue_worker(dev_env.client, demo, pool) as tq:
        await start(dev_env.client, tq, "noise", grid="donghua-a1-c1-g1")
    worker = build_worker(dev_env.client, demo, pool, MemoryNotifier(), tq)
    endpoint = metrics.worker_endpoint(dev_env.client, pool, worker)
    async with metrics.serving(endpoint, address) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/livez")).json() == {"status": "alive"}
        r = await answers(http, "/readyz", lambda r: set(r.json().get("down", {})) == {"worker"})
        assert r.status_code == 503 and set(r.json()["down"]) == {"worker"}  # not polling yet
        async with worker:
            for _ in range(100):  # ready once the worker has validated its namespace and polls
                r = await http.get("/readyz")
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 200, r.text
            text = (await http.get("/metrics")).text
        assert 'whistle_open_issues{overdue="false",stage="grid",street="donghua"}' in text
        assert "whistle_transitions_total" in text
        assert (await http.get("/readyz")).status_code == 503  # shut down


async def test_api_counts_requests_by_route_template_and_healthz_names_what_is_down(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api:
        n = api_value("whistle_api_requests_total", method="GET", route="/v1/issues/{issue_id}", status="404")
        r = await api.http.get("/v1/issues/hotline-nope", headers=key("supervisor"))
        assert r.status_code == 404
        assert api_value("whistle_api_requests_total", method="GET", route="/v1/issues/{issue_id}", status="404") == n + 1
        assert api_value("whistle_api_request_duration_seconds_count", method="GET", route="/v1/issues/{issue_id}") >= 1
        assert (await api.http.get("/livez")).json() == {"status": "alive"}
        assert (await answers(api.http, "/healthz", lambda r: r.status_code == 200)).status_code == 200
        # Temporal gone: a client to a port nothing listens on.
        dead = await Client.connect(free_address(), lazy=True)
        api.app.state.deps.client = dead
        r = await api.http.get("/healthz")
        assert r.status_code == 503
        assert r.json()["status"] == "down" and list(r.json()["down"]) == ["temporal"]


async def test_readyz_names_postgresql_when_the_pool_cannot_reach_it(dev_env, demo, pg_server):
    from tests.conftest import read_model

    async with read_model(pg_server, demo) as pool:
        worker = build_worker(dev_env.client, demo, pool, MemoryNotifier(), f"tq-pg-{id(pool)}")
        endpoint = metrics.worker_endpoint(dev_env.client, pool, worker)
        async with metrics.serving(endpoint, free_address()) as url, httpx.AsyncClient(base_url=url) as http, worker:
            await pool.close()  # as when PostgreSQL has gone
            r = await answers(http, "/readyz", lambda r: set(r.json().get("down", {})) == {"postgres"})
            assert r.status_code == 503 and "postgres" in r.json()["down"], r.text
            assert "temporal" not in r.json()["down"]
            # /metrics still answers, without the read-model gauges it cannot compute
            text = (await http.get("/metrics")).text
            assert "whistle_transitions_total" in text and "whistle_open_issues{" not in text
