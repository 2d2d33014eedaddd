"""The whole-quarter scenario shared by tests/test_quarter.py and tests/test_league_page.py."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from temporalio.testing import WorkflowEnvironment

from schemas.evaluation import EvaluationInput
from schemas.league import LeagueInput, LeaguePolicy
from schemas.period import next_quarter, period_bounds, quarter_of
from tests.conftest import CONVERTER, TS_ATTESTATION, issue_worker, read_model
from tests.helpers import GRID_WORKER, RESIDENT, STREET_HANDLER, SUPERVISOR, act, dept, start, state
from whistle.console.dev import find_binary
from whistle.temporal import ensure_search_attributes
from workflows.evaluation import ReverseEvaluationWorkflow
from workflows.league import LeagueTableWorkflow

SHANGHAI = ZoneInfo("Asia/Shanghai")
COMMUNITY = {"id": "community-1", "role": "community", "unit_id": "heping-a1-c1"}


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict, str]] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((json.loads(body), self.headers["Idempotency-Key"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


async def step(env, coro, timeout: float = 30):
    """Updates run with time standing still (the time-skipping server would otherwise jump
    ahead while an update waits), and fail fast instead of hanging."""
    with env.auto_time_skipping_disabled():
        return await asyncio.wait_for(coro, timeout)


async def days_until(env, check, handle, limit: int = 30):
    """Moves the server's clock a day at a time until `check` holds of the issue's state, and
    returns that state: a deadline in working days falls where weekends and holidays put it, so a
    fixed jump would pass or fail with the calendar."""
    for _ in range(limit):
        s = await state(handle)
        if check(s):
            return s
        await env.sleep(timedelta(days=1))
    raise AssertionError(f"not within {limit} days: {s.stage}, {len(s.penalties)} penalties")


@pytest.fixture(scope="session")
async def quarter(demo, pg_server):
    """A whole quarter on its own time-skipping server, run once for the tests that read it."""
    ts_env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER, interceptors=TS_ATTESTATION, test_server_existing_path=str(find_binary("temporal-test-server")))
    await ensure_search_attributes(ts_env.client, "default")
    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    policy = LeaguePolicy(red_size=1, black_size=1, black_if_penalties_at_least=2, on_no_answer="publish",
                          webhook=f"http://127.0.0.1:{hook.server_port}/league")
    client = ts_env.client
    async with read_model(pg_server, demo) as pool:
        async with issue_worker(client, demo, pool) as tq:
            # The test server starts at the real time; the scenario starts on a Monday morning in
            # the fourth week of the next quarter, so that what follows (a few weeks of working-day
            # deadlines) stays inside one quarter whatever today's date is.
            now = await ts_env.get_current_time()
            period = next_quarter(quarter_of(now))
            day = (period_bounds(period)[0] + timedelta(days=21)).astimezone(SHANGHAI).date()
            day += timedelta(days=-day.weekday() % 7)
            await ts_env.sleep(datetime.combine(day, time(10), SHANGHAI) - now)
            # On time: lvhua reports in and resolves at once; the resident is satisfied.
            good = await start(client, tq, "tree-trimming", reporter={"phone": "13800000000"})
            await step(ts_env, act(good, "escalate", actor=GRID_WORKER, reason="r"))
            await step(ts_env, act(good, "dispatch", actor=STREET_HANDLER))
            await step(ts_env, act(good, "accept", actor=dept("lvhua")))
            await step(ts_env, act(good, "resolve", actor=dept("lvhua"), summary="修剪完毕"))
            await step(ts_env, act(good, "feedback", actor=RESIDENT, satisfied=True))
            # Late: chengguan never reports in; the supervisor sends it back to them; again nothing.
            late = await start(client, tq, "public-toilet")
            await step(ts_env, act(late, "escalate", actor=GRID_WORKER, reason="r"))
            await step(ts_env, act(late, "dispatch", actor=STREET_HANDLER))
            await days_until(ts_env, lambda s: s.stage == "arbitration", late)
            await step(ts_env, act(late, "assign", actor=SUPERVISOR, department_id="chengguan", to_department="chengguan", reason="驳回"))
            late_state = await days_until(ts_env, lambda s: len(s.penalties) == 2, late)
            assert quarter_of(await ts_env.get_current_time()) == period

            # The quarter ends; its evaluation round and its league table start.
            _, end = period_bounds(period)
            await ts_env.sleep(end - await ts_env.get_current_time() + timedelta(hours=9))
            evaluation = await client.start_workflow(ReverseEvaluationWorkflow.run, EvaluationInput(quarter=period),
                                                     id=f"evaluation-{period}", task_queue=tq)
            league = await client.start_workflow(LeagueTableWorkflow.run, LeagueInput(period=period, policy=policy),
                                                 id=f"league-{period}", task_queue=tq)
            for _ in range(100):
                try:
                    opened = await evaluation.query(ReverseEvaluationWorkflow.state)
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            rating = {"actor": COMMUNITY, "responsiveness": 5, "quality": 5, "attitude": 5}
            await step(ts_env, evaluation.execute_update("rate", rating | {"target_id": "lvhua"}))
            await step(ts_env, evaluation.execute_update("rate", rating | {"target_id": "chengguan", "responsiveness": 2}))
            # Revised before the close: the later rating counts.
            await step(ts_env, evaluation.execute_update("rate", rating | {
                "target_id": "chengguan", "responsiveness": 1, "quality": 2, "attitude": 2,
                "pushed_down": True, "evidence": "把公厕保洁推给社区"}))
            closed = await evaluation.result()
            published = await league.result()
            yield {
                "period": period, "pool": pool, "client": client, "tq": tq, "evaluation": evaluation,
                "opened": opened, "closed": closed, "league": published, "late": late_state, "policy": policy,
                "env": ts_env,
            }
    hook.shutdown()
    await ts_env.shutdown()


