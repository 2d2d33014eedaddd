"""Workflow code must replay the histories of executions that may still be running."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from schemas.issue import IssueWorkflowInput
from schemas.league import LeagueInput
from tests.conftest import TEST_KEYRING, issue_worker
from tests.record_history import drive
from whistle.temporal import data_converter
from workflows.briefing import MonthlyBriefingWorkflow
from workflows.issue import IssueWorkflow
from workflows.league import LeagueTableWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def replayer() -> Replayer:
    # With the codec; payloads recorded before it pass through decode unchanged (strict=False,
    # for this Replayer only: workers and clients refuse them).
    return Replayer(workflows=[IssueWorkflow, LeagueTableWorkflow, MonthlyBriefingWorkflow],
                    data_converter=data_converter(TEST_KEYRING, strict=False), interceptors=production_interceptors(TEST_KEYRING))


def production_interceptors(keyring) -> list:
    """The workflow interceptors a production worker runs (worker.build_worker: the client's
    actor attestation, which also carries update ids across continue-as-new, and the log
    context): they run on replay as the workflow does."""
    from tests.conftest import TEST_ACTOR_KEYS
    from whistle.attest import ActorAttestation
    from whistle.logging import LogContextInterceptor

    return [ActorAttestation(TEST_ACTOR_KEYS, keyring), LogContextInterceptor()]


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


# ---------------------------------------------------------------------------------- the corpus
from tests.record_corpus import HISTORIES as _DIR, corpus_keyring, read  # noqa: E402

CORPUS = sorted(_DIR.glob("corpus-*.jsonl.gz"))


def test_the_corpus_covers_every_workflow_type_and_path():
    histories = [h for path in CORPUS for h in read(path)]
    assert len(histories) >= 200, f"the corpus holds {len(histories)} histories; at least 200 are wanted"
    from worker import WORKFLOWS

    types = {t for t, _ in histories}
    wanted = {w.__temporal_workflow_definition.name for w in WORKFLOWS}
    assert wanted <= types, f"no recorded history of {sorted(wanted - types)}"
    from temporalio.api.enums.v1 import EventType as T

    def has(kind) -> int:
        return sum(1 for _, h in histories if any(e.event_type == kind for e in h.events))

    assert has(T.EVENT_TYPE_TIMER_FIRED) >= 20, "fired timers"
    assert has(T.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW) >= 1, "continue-as-new"
    assert has(T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) >= 100, "updates"
    # Every update of every workflow, by name (update names are in clear in history).
    names = {e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
             for _, h in histories for e in h.events
             if e.event_type == T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED}
    for name in ("accept", "resolve", "escalate", "dispatch", "decline", "request_extension", "decide_extension",
                 "assign", "urge", "feedback", "review", "rate", "review_draft"):
        assert name in names, f"no recorded history runs the update {name}"


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
async def test_the_corpus_replays(path: Path):
    """With the production converter and the corpus's own key. A failure names the workflow
    and the event the replay stopped at."""
    from worker import WORKFLOWS

    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=data_converter(corpus_keyring()),
                        interceptors=production_interceptors(corpus_keyring()))
    failures = []
    for wf_type, history in read(path):
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures.append(f"{wf_type} {history.workflow_id}: {result.replay_failure}")
    assert not failures, f"{len(failures)} histories of {path.name} do not replay:\n" + "\n".join(failures[:10])


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


def test_the_league_signal_histories_cover_both_paths():
    """A round closed while the league checks the rounds: recorded before the
    `league-round-signal-kept` patch (its run waited for the poll's timer) and after it (it
    checked again at once). Both replay (test_the_corpus_replays)."""
    import json

    from temporalio.api.enums.v1 import EventType as T

    from workflows.league import KEEPS_SIGNAL

    def shape(name: str) -> tuple[set[str], list[str]]:
        [(_, history)] = read(_DIR / name)
        patches = {json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
                   for e in history.events if e.event_type == T.EVENT_TYPE_MARKER_RECORDED}
        steps = [e.activity_task_scheduled_event_attributes.activity_type.name
                 if e.event_type == T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED else "timer"
                 for e in history.events
                 if e.event_type in (T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, T.EVENT_TYPE_TIMER_STARTED)]
        assert any(e.event_type == T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED for e in history.events)
        return patches, steps[:steps.index("compute_league")]

    old, new = shape("corpus-v8-league-signal.jsonl.gz"), shape("corpus-league-signal.jsonl.gz")
    assert KEEPS_SIGNAL not in old[0] and old[1] == ["rounds_closed", "timer", "rounds_closed"]
    assert KEEPS_SIGNAL in new[0] and new[1] == ["rounds_closed", "rounds_closed"]
