"""Nothing is lost while the read model refuses writes: a move waits for its write, which is
retried until PostgreSQL takes it, and lands once."""

from __future__ import annotations

import asyncio

from schemas.issue import Stage
from tests.conftest import issue_worker
from tests.helpers import GRID_WORKER, act, start
from whistle.db import queries


async def test_an_update_waits_out_a_failing_write_and_lands_once(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "neighbour-dispute")
        async with pool.acquire() as conn:
            # A real refusal from PostgreSQL: every write of an event fails until it is back.
            await conn.execute("ALTER TABLE issue_events RENAME TO issue_events_away")
        update = asyncio.create_task(act(h, "escalate", actor=GRID_WORKER, reason="需要社区调解"))
        await asyncio.sleep(1.5)  # several retries (200 ms, doubling)
        assert not update.done(), "the update returned before its write landed"
        async with pool.acquire() as conn:
            await conn.execute("ALTER TABLE issue_events_away RENAME TO issue_events")
        s = await asyncio.wait_for(update, 30)
        assert s.stage == Stage.community
        async with pool.acquire() as conn:
            events = await conn.fetch(queries.SELECT_EVENTS, s.issue_id)
            issue = await conn.fetchrow(queries.SELECT_ISSUE, s.issue_id)
    assert [e["kind"] for e in events] == ["intake", "escalated"] and [e["seq"] for e in events] == [1, 2]
    assert issue["stage"] == "community" and issue["seq"] == s.seq


async def test_an_outage_is_logged_once_not_per_attempt(dev_env, demo, pool, caplog):
    import logging

    from structlog.testing import capture_logs

    caplog.set_level(logging.INFO, logger="temporalio")

    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "neighbour-dispute")
        with capture_logs() as logs:
            async with pool.acquire() as conn:
                await conn.execute("ALTER TABLE issue_events RENAME TO issue_events_away")
            update = asyncio.create_task(act(h, "escalate", actor=GRID_WORKER, reason="需要社区调解"))
            await asyncio.sleep(2.5)  # several attempts, 200 ms doubling to the 1 s cap
            async with pool.acquire() as conn:
                await conn.execute("ALTER TABLE issue_events_away RENAME TO issue_events")
            back = asyncio.get_running_loop().time()
            s = await asyncio.wait_for(update, 30)
            took = asyncio.get_running_loop().time() - back
    events = [e["event"] for e in logs if e["event"].startswith("read_model.")]
    assert events == ["read_model.unavailable", "read_model.recovered"], events
    recovered = next(e for e in logs if e["event"] == "read_model.recovered")
    assert recovered["failed_attempts"] >= 3
    assert took < 6, f"the write landed {took:.1f} s after PostgreSQL took writes again"
    assert s.stage == Stage.community
    # The SDK logged no failed attempt above DEBUG (a benign error), so no traceback per attempt.
    assert not [r for r in caplog.records if r.name.startswith("temporalio") and r.levelno >= logging.WARNING
                and "ReadModelUnavailable" in (r.getMessage() + str(r.exc_info))]
