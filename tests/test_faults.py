"""The fault suite's short version (bench/faults.py has the whole): the Temporal dev server,
PostgreSQL, the worker and the API as separate processes; 20 lifecycles over HTTP with
retrying clients while the worker is SIGKILLed three times; then every issue is audited and every
history replayed. Both policies: with `PT` deadlines of seconds, timers fall due while the worker
is gone (the stale clock of the first task after a sticky time-out, patch timer-clock)."""

from __future__ import annotations

import pytest

from bench.faults import run_scenario


@pytest.mark.timeout(400)
@pytest.mark.parametrize("policies", ["wd", "pt"])
async def test_worker_kills_lose_nothing_duplicate_nothing_and_leave_nothing_stuck(policies):
    f = await run_scenario("worker-kill", policies, lifecycles=20, cache=None, concurrency=10)
    summary = {k: getattr(f, k) for k in ("started", "closed", "lost", "duplicated", "stuck", "task_failures",
                                           "replay_failures", "read_model_mismatches", "plain_text_5xx", "recovery_s")}
    assert f.started == f.closed == 20, (summary, f.notes)
    assert f.lost == f.duplicated == f.stuck == 0, (summary, f.notes)
    assert f.task_failures == f.replay_failures == f.read_model_mismatches == 0, (summary, f.notes)
    assert f.plain_text_5xx == 0, f.notes
    assert f.recovery_s is not None and f.recovery_s <= 30, summary
