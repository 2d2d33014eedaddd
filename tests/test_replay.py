"""Workflow code must replay the histories of executions that may still be running."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from schemas.issue import IssueWorkflowInput
from tests.conftest import TEST_KEYRING, issue_worker
from tests.record_history import drive
from whistle.temporal import data_converter
from workflows.issue import IssueWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def replayer() -> Replayer:
    # With the codec; payloads recorded before it pass through decode unchanged (strict=False,
    # for this Replayer only: workers and clients refuse them).
    return Replayer(workflows=[IssueWorkflow], data_converter=data_converter(TEST_KEYRING, strict=False))


def test_recorded_histories_exist():
    assert HISTORIES, "tests/histories/ must hold at least one recorded history"


def load(path: Path) -> WorkflowHistory:
    """A recorded history, under the workflow id its start input derives (the workflow checks it)."""
    history = WorkflowHistory.from_json("unknown", path.read_text(encoding="utf-8"))
    started = history.events[0].workflow_execution_started_event_attributes
    [input] = pydantic_data_converter.payload_converter.from_payloads(started.input.payloads, [IssueWorkflowInput])
    return WorkflowHistory(input.intake.workflow_id, history.events)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.name for p in HISTORIES])
async def test_replay_recorded_history(path: Path):
    history = load(path)
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_replay_of_a_fresh_lifecycle(dev_env, demo, pool):
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await drive(dev_env.client, tq)
    result = await replayer().replay_workflow(await h.fetch_history(), raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
