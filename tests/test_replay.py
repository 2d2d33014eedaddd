"""Workflow code must replay the histories of executions that may still be running."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from schemas.issue import IssueWorkflowInput
from schemas.league import LeagueInput
from tests.conftest import CONVERTER, issue_worker
from tests.record_history import drive
from workflows.briefing import MonthlyBriefingWorkflow
from workflows.issue import IssueWorkflow
from workflows.league import LeagueTableWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def replayer() -> Replayer:
    # With the codec: payloads recorded before it pass through decode unchanged.
    return Replayer(workflows=[IssueWorkflow, LeagueTableWorkflow, MonthlyBriefingWorkflow], data_converter=CONVERTER)


def test_recorded_histories_exist():
    assert HISTORIES, "tests/histories/ must hold at least one recorded history"


def load(path: Path) -> WorkflowHistory:
    """A recorded history, under the workflow id its start input derives (the workflow checks it)."""
    history = WorkflowHistory.from_json("unknown", path.read_text(encoding="utf-8"))
    started = history.events[0].workflow_execution_started_event_attributes
    payloads = started.input.payloads
    if started.workflow_type.name == "MonthlyBriefingWorkflow":
        return history  # its id is not checked
    if started.workflow_type.name == "LeagueTableWorkflow":
        [league] = pydantic_data_converter.payload_converter.from_payloads(payloads, [LeagueInput])
        return WorkflowHistory(f"league-{league.period}", history.events)
    [input] = pydantic_data_converter.payload_converter.from_payloads(payloads, [IssueWorkflowInput])
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


def test_the_league_histories_cover_both_review_paths():
    """v1 predates the adjustments (no patch marker); v2 took the patched path with one."""
    import base64
    import json

    def payload_text(path: Path) -> str:
        found = []

        def walk(node):
            if isinstance(node, dict):
                if isinstance(node.get("data"), str):
                    found.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(json.loads(path.read_text(encoding="utf-8")))
        return "\n".join(found)

    old, new = (payload_text(Path(__file__).parent / "histories" / f"league_review_{v}.json") for v in ("v1", "v2"))
    assert "league-review-adjustments" not in old and "exclude_issue" not in old
    assert "league-review-adjustments" in new and "exclude_issue" in new
