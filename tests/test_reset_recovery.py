"""The recovery docs/operations.md gives for executions that cannot replay under the current
code (the `PT` runs of the code before patch v5): `temporal workflow reset --type
FirstWorkflowTask`, as the docs print it. An "old code" is played by the same workflow with one
more command before registering (a timer), so that the current code cannot replay its
histories, deterministically; each such issue is reset and carries on under the current code:
registered again, its accepted update re-applied, and the next actions land until it closes."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import WorkflowQueryFailedError
from temporalio.worker import UnsandboxedWorkflowRunner

from schemas.issue import Stage
from schemas.jurisdiction import LevelPolicy
from tests.conftest import issue_worker
from tests.helpers import GRID_WORKER, RESIDENT, STREET_HANDLER, act, dept, events, start, state, until, with_policies
from whistle.db import queries
from whistle.console.dev import find_binary
from workflows.issue import IssueWorkflow

pytestmark = pytest.mark.slow


@pytest.fixture
def seconds(demo):
    """Exact durations (the policies the pre-v5 failure hit), none falling due in the test."""
    hour = LevelPolicy(handle="PT1H")
    return with_policies(demo, grid=hour, community=hour, area=hour, street=hour,
                         department=LevelPolicy(accept="PT1H", resolve="PT1H"))


async def cannot_replay(handle, within: float = 20) -> bool:
    """A query replays the history on a worker without a cache: TMPRL1100 when it cannot."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while True:
        try:
            await state(handle)
            return False
        except WorkflowQueryFailedError as err:
            if "TMPRL1100" in str(err):
                return True
            if loop.time() > end:
                raise
        await asyncio.sleep(0.2)


async def failed_tasks(handle) -> int:
    """Workflow-task failures other than the reset's own mark (cause RESET_WORKFLOW)."""
    return sum([
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and e.workflow_task_failed_event_attributes.cause != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
        async for e in handle.fetch_history_events()
    ])


async def test_reset_to_the_first_task_recovers_executions_that_cannot_replay(dev_env, seconds, pool, monkeypatch):
    client = dev_env.client
    register = IssueWorkflow._register

    async def old_register(self, input):
        await workflow.sleep(timedelta(milliseconds=1))
        await register(self, input)

    with monkeypatch.context() as m:  # the old code (unsandboxed, so the monkeypatch applies)
        m.setattr(IssueWorkflow, "_register", old_register)
        async with issue_worker(client, seconds, pool, workflow_runner=UnsandboxedWorkflowRunner()) as task_queue:
            old = [await start(client, task_queue, "tree-trimming") for _ in range(3)]
            before = [(await act(h, "escalate", actor=GRID_WORKER, reason="涉及部门")).stage for h in old]
    assert before == [Stage.street] * 3

    async with issue_worker(client, seconds, pool, task_queue=task_queue, max_cached_workflows=0):
        for h in old:
            assert await cannot_replay(h)
        for h in old:
            subprocess.run(
                [str(find_binary("temporal")), "workflow", "reset", "--address", client.service_client.config.target_host,
                 "--workflow-id", h.id, "--type", "FirstWorkflowTask", "--reason", "replay fix (docs/operations.md)"],
                check=True, capture_output=True, text=True, timeout=30,
            )
        for h in old:
            new = client.get_workflow_handle(h.id)  # the reset's new run
            assert (await new.describe()).run_id != h.result_run_id
            s = await until(new, lambda s: s.stage == Stage.street, timeout=20)  # the escalate, re-applied
            kinds = [e.kind for e in await events(pool, s)]
            assert kinds.count("escalated") == 1, kinds
            await act(new, "dispatch", actor=STREET_HANDLER)
            await act(new, "accept", actor=dept("lvhua"))
            await act(new, "resolve", actor=dept("lvhua"), summary="修剪")
            s = await act(new, "feedback", actor=RESIDENT, satisfied=True)
            assert s.stage == Stage.closed and await failed_tasks(new) == 0
            # The read model ends as the new run: its row closed, its events the new run's, once each.
            async with pool.acquire() as conn:
                row = await conn.fetchrow(queries.SELECT_ISSUE, s.issue_id)
                rows = await conn.fetch(queries.SELECT_EVENTS, s.issue_id)
            assert row["stage"] == "closed"
            assert [e["seq"] for e in rows] == list(range(1, s.seq + 1))
