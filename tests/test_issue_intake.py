"""Intake: one workflow per (channel, reference); bad starts fail clearly; long issues
continue as new with their state."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.workflow._definition import _Definition

from activities.issue import IssueActivities
from activities.notifier import MemoryNotifier
from api.intake import wait_registered
from schemas.issue import IssueWorkflowInput, Stage
from tests.conftest import issue_worker
from tests.helpers import GRID, GRID_WORKER, RESIDENT, SUPERVISOR, act, events, intake, listed, start, state, until
from whistle.intake import submit_issue
from workflows.issue import IssueWorkflow


@pytest.fixture
async def tq(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as task_queue:
        yield task_queue


async def test_same_intake_twice_is_the_same_issue(dev_env, tq):
    report = intake("noise", channel="wechat", reference="wx-20261122-0001")
    first, created, s = await submit_issue(dev_env.client, report, tq)
    length = (await first.describe()).raw_description.workflow_execution_info.history_length
    again, created_again, s_again = await submit_issue(dev_env.client, report, tq)
    assert (created, created_again) == (True, False)
    assert first.id == again.id == "issue-wechat-wx-20261122-0001"
    assert (await first.describe()).run_id == (await again.describe()).run_id
    # Registered when the first call returns (update-with-start: nobody polls).
    assert s.issue_id == report.issue_id and s.stage == Stage.grid and s.seq == 1 and s.owner_unit == GRID
    # The second reached nothing of the issue (no update in its history): its caller reads it.
    assert s_again is None
    assert (await again.describe()).raw_description.workflow_execution_info.history_length == length


async def test_fifty_concurrent_submissions_make_one_workflow(dev_env, tq):
    report = intake("noise", channel="qr", reference="qr-burst-1")
    results = await asyncio.gather(*(submit_issue(dev_env.client, report, tq) for _ in range(50)))
    assert sum(created for _, created, _ in results) == 1
    assert {h.id for h, _, _ in results} == {report.workflow_id}
    assert [s.issue_id for _, created, s in results if created] == [report.issue_id]
    assert all(s is None for _, created, s in results if not created)
    runs = await listed(dev_env.client, f'WorkflowId="{report.workflow_id}"')
    assert len(runs) == 1


async def test_a_closed_issue_is_not_started_again(dev_env, tq):
    report = intake("corridor-clutter", channel="walkin", reference="w-closed-1")
    h, _, _ = await submit_issue(dev_env.client, report, tq)
    await act(h, "resolve", actor=GRID_WORKER, summary="done")
    await act(h, "feedback", actor=RESIDENT, satisfied=True)
    await h.result()
    again, created, s = await submit_issue(dev_env.client, report, tq)
    assert not created and (await again.describe()).run_id == (await h.describe()).run_id
    assert s is None  # the server refused the start: the caller reads the closed issue by query


async def test_a_workflow_id_not_derived_from_the_intake_fails(dev_env, tq):
    report = intake("noise")
    h = await dev_env.client.start_workflow(IssueWorkflow.run, IssueWorkflowInput(intake=report), id="issue-made-up", task_queue=tq)
    with pytest.raises(WorkflowFailureError) as info:
        await h.result()
    assert isinstance(info.value.cause, ApplicationError) and info.value.cause.type == "BadWorkflowId"


@pytest.mark.parametrize(("field", "value", "error"), [("category", "unicorns", "UnknownCategory"), ("grid_id", "heping", "UnknownGrid")])
async def test_unknown_category_or_grid_fails_the_start(dev_env, tq, field, value, error):
    report = intake(**{field: value}) if field == "category" else intake(grid=value)
    with pytest.raises(WorkflowFailureError) as info:  # the start's call says why, as the run failed
        await submit_issue(dev_env.client, report, tq)
    assert info.value.cause.type == error and value in info.value.cause.message
    runs = await listed(dev_env.client, f'WorkflowId="{report.workflow_id}"',
                        lambda ws: any(w.status == WorkflowExecutionStatus.FAILED for w in ws))
    assert len(runs) == 1 and runs[0].status == WorkflowExecutionStatus.FAILED


async def test_continue_as_new_carries_the_state(dev_env, tq, pool):
    h = await start(dev_env.client, tq, "corridor-clutter", max_history_events=40)
    for n in range(12):
        await act(h, "urge", actor=SUPERVISOR, note=f"第{n}次督办")
    s = await until(h, lambda s: s.runs > 1)
    assert s.urges == 12 and s.seq == 13  # intake and the urges: the count carried over
    assert (await h.describe()).run_id != h.result_run_id  # a new run of the same workflow id
    # The issue goes on in the new run.
    await act(h, "resolve", actor=GRID_WORKER, summary="done")
    s = await act(h, "feedback", actor=RESIDENT, satisfied=True)
    assert s.stage == Stage.closed and s.urges == 12
    assert [e.seq for e in await events(pool, s)] == list(range(1, s.seq + 1))
    assert (await state(h)).stage == Stage.closed


class IssueWorkflowBeforeRegister(IssueWorkflow):
    """IssueWorkflow as a worker of the release before the `register` update runs it (a rolling
    upgrade: the API is new, the worker not yet): the same workflow without that update."""


_defn = _Definition.must_from_class(IssueWorkflow)
setattr(IssueWorkflowBeforeRegister, "__temporal_workflow_definition", dataclasses.replace(
    _defn, cls=IssueWorkflowBeforeRegister, updates={k: v for k, v in _defn.updates.items() if k != "register"}))


async def test_a_worker_without_the_register_update_still_takes_intakes(dev_env, demo, pool):
    """The SDK refuses the unknown update, the start stands: submit_issue says it made the issue
    and leaves the state to be read, as the API then does."""
    tq = f"tq-old-{uuid.uuid4().hex[:8]}"
    activities = IssueActivities(demo, pool, MemoryNotifier()).all()
    async with Worker(dev_env.client, task_queue=tq, workflows=[IssueWorkflowBeforeRegister], activities=activities,
                      workflow_runner=UnsandboxedWorkflowRunner()):
        report = intake("noise", channel="qr", reference=f"qr-old-{uuid.uuid4().hex[:6]}")
        h, created, s = await submit_issue(dev_env.client, report, tq)
        again, created_again, s_again = await submit_issue(dev_env.client, report, tq)
        assert (created, created_again) == (True, False) and s is None and s_again is None
        registered = await wait_registered(h, dev_env.client)
        assert registered.issue_id == report.issue_id and registered.stage == Stage.grid
        assert (await again.describe()).run_id == (await h.describe()).run_id
