"""Every probe of the security review (issue 12) as a test: forged actors, faked satisfaction,
issues outside a unit's scope, reporters' data on public feeds and the codec server, secrets
on disk, and the robustness of the public edges. See docs/security.md."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError

from tests.api_support import key, serve_api
from tests.conftest import CONVERTER, TEST_ACTOR_ENTRY, TEST_ACTOR_KEYS, TEST_KEYRING, issue_worker
from tests.helpers import SUPERVISOR, events, polled, start, state, until
from tests.helpers import intake as intake_of
from whistle.attest import HEADER, START_HEADER, ActorAttestation, ActorKeys
from whistle.codec import Keyring
from whistle.console.dev import find_binary
from workflows.issue import IssueWorkflow

FORGED = {"actor": {"id": "forged", "role": "supervisor"}, "note": "x"}


async def forged_events(pool, s) -> int:
    return sum(1 for e in await events(pool, s) if e.actor is not None and e.actor.id == "forged")


# ---------------------------------------------------------------------------------- 1. forged actors
# The app on a real port (the `temporal` CLI reaches the codec server over HTTP).
from tests.test_cli_issues import served as http_server  # noqa: E402


async def temporal_cli(env, *args: str, **environ: str) -> subprocess.CompletedProcess:
    address = env.client.service_client.config.target_host
    cmd = [str(find_binary("temporal")), *args, "--address", address]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    return await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=60, env=clean | environ
    )


async def test_forged_actor_from_the_temporal_cli_is_refused(dev_env, demo, pool):
    """The review's probe: no codec, no key, a supervisor's urge. Refused, nothing recorded."""
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "tree-trimming")
        r = await temporal_cli(
            dev_env, "workflow", "update", "execute", "-w", h.id, "--name", "urge", "--input", json.dumps(FORGED)
        )
        assert r.returncode != 0
        assert await forged_events(pool, await state(h)) == 0


async def test_a_workflow_started_with_plain_payloads_never_runs(dev_env, demo, pool):
    """An unattested start (here with plain payloads too) never runs a step; the intake of its
    reference says plainly that the id is held by a workflow whistle did not start."""
    async with issue_worker(dev_env.client, demo, pool) as tq:
        wid = f"issue-hotline-forged-{uuid.uuid4().hex[:6]}"
        intake = {"intake": {"channel": "hotline", "reference": wid.removeprefix("issue-hotline-"),
                             "category": "tree-trimming", "grid_id": "heping-a1-c1-g1", "description": "forged"}}
        r = await temporal_cli(dev_env, "workflow", "start", "--type", "IssueWorkflow", "--task-queue", tq,
                               "--workflow-id", wid, "--input", json.dumps(intake))
        assert r.returncode == 0, r.stderr
        await asyncio.sleep(1.5)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM issues WHERE workflow_id = $1", wid) == 0
        # The API says so plainly, never 500, whether reading it or submitting its reference.
        async with serve_api(dev_env, demo, pool) as a:
            iid = wid.removeprefix("issue-")
            r = await a.http.get(f"/v1/issues/{iid}", headers=key("supervisor"))
            assert r.status_code == 503 and "cannot be read" in r.json()["error"], r.text
            assert "started outside whistle" in r.json()["error"]
            r = await a.http.post("/v1/issues", json=intake["intake"] | {"description": "real"}, headers=HOTLINE_KEY)
            assert r.status_code == 409 and "started outside whistle" in r.json()["error"], r.text
            assert r.json()["detail"] == {"workflow_id": wid}
        await dev_env.client.get_workflow_handle(wid).terminate("test")


def whistle_actor_sign(*args: str) -> str:
    """`whistle actor sign …` as an operator runs it, with the tests' actor key."""
    from typer.testing import CliRunner

    from tests.conftest import TEST_ACTOR_ENTRY
    from whistle.console.cli import app

    result = CliRunner().invoke(app, ["actor", "sign", *args], env={"WHISTLE_ACTOR_KEYS": TEST_ACTOR_ENTRY})
    assert result.exit_code == 0, result.output
    return result.output.strip()


async def test_the_temporal_cli_walk_through_with_whistle_actor_sign(dev_env, demo, pool):
    """The README's walk-through: a start and updates signed by `whistle actor sign`. Without a
    header, or with one signed for another workflow, body or update id, refused; the same update
    id again is the same update (Temporal answers with its first outcome)."""
    async with serve_api(dev_env, demo, pool) as api, http_server(api.app) as url:
        codec = {"TEMPORAL_CODEC_ENDPOINT": f"{url}/codec", "TEMPORAL_CODEC_AUTH": "Bearer key-ops"}
        wid = f"issue-hotline-cli-{uuid.uuid4().hex[:6]}"
        start_input = json.dumps({"intake": {"channel": "hotline", "reference": wid.removeprefix("issue-hotline-"),
                                             "category": "tree-trimming", "grid_id": "heping-a1-c1-g1",
                                             "description": "树枝挡路"}})
        header = whistle_actor_sign("-w", wid, "--start", "IssueWorkflow", "--input", start_input)
        assert header.startswith(f"{START_HEADER}=")
        r = await temporal_cli(dev_env, "workflow", "start", "--type", "IssueWorkflow", "--task-queue", api.task_queue,
                               "--workflow-id", wid, "--input", start_input, "--headers", header, **codec)
        assert r.returncode == 0, r.stderr
        h = dev_env.client.get_workflow_handle(wid)
        await until(h, lambda s: True)  # it registered: the signed start ran

        urge = json.dumps(FORGED)

        async def update(update_id: str, *headers: str) -> subprocess.CompletedProcess:
            return await temporal_cli(dev_env, "workflow", "update", "execute", "-w", wid, "--name", "urge",
                                      "--update-id", update_id, "--input", urge, *headers, **codec)

        r = await update("u-none")
        assert r.returncode != 0 and "not attested" in r.stderr + r.stdout, r.stderr
        other = whistle_actor_sign("-w", "issue-other", "--name", "urge", "--update-id", "u-1", "--input", urge)
        r = await update("u-1", "--headers", other)
        assert r.returncode != 0 and "not attested" in r.stderr + r.stdout
        assert await forged_events(pool, await state(h)) == 0
        # An operator holding the actor key: the header names the update id the CLI sends.
        signed = whistle_actor_sign("-w", wid, "--name", "urge", "--update-id", "u-1", "--input", urge)
        r = await update("u-1", "--headers", signed)
        assert r.returncode == 0, r.stderr
        assert await forged_events(pool, await state(h)) == 1
        r = await update("u-2", "--headers", signed)  # the same header under another update id
        assert r.returncode != 0 and "not attested" in r.stderr + r.stdout
        r = await update("u-1", "--headers", signed)  # the same update again: its first outcome
        assert r.returncode == 0, r.stderr
        assert await forged_events(pool, await state(h)) == 1
        # An update id is needed to sign at all.
        from typer.testing import CliRunner

        from whistle.console.cli import app

        result = CliRunner().invoke(app, ["actor", "sign", "-w", wid, "--name", "urge", "--input", urge],
                                    env={"WHISTLE_ACTOR_KEYS": TEST_ACTOR_ENTRY})
        assert result.exit_code != 0 and "--update-id" in result.output


def accepted_update(history, name: str):
    """The request of the first accepted update called `name` in a history, as anyone who can
    read the history sees it: header and (encrypted) body."""
    for e in history.events:
        if e.HasField("workflow_execution_update_accepted_event_attributes"):
            request = e.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.input.name == name:
                return request
    raise AssertionError(f"no accepted update {name!r}")


async def send_raw_update(client: Client, workflow_id: str, request, update_id: str):
    """Send a copied update request under `update_id`, as a client without any key could."""
    from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
    from temporalio.api.update.v1 import Meta, Request, WaitPolicy
    from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionRequest
    from temporalio.api.common.v1 import WorkflowExecution

    return await client.workflow_service.update_workflow_execution(UpdateWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        wait_policy=WaitPolicy(lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED),
        request=Request(meta=Meta(update_id=update_id, identity="replayer"), input=request.input),
    ))


async def test_a_captured_update_is_worthless_under_another_update_id(dev_env, demo, pool):
    """The review's replay: header and body copied from history and resent under a new update id
    are refused; under the same id Temporal answers with the first outcome and runs nothing."""
    plain = await Client.connect(dev_env.client.service_client.config.target_host)  # no keys at all
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "tree-trimming")
        first = await h.execute_update("urge", {"actor": SUPERVISOR, "note": "督办"}, result_type=dict, id="urge-1")
        captured = accepted_update(await h.fetch_history(), "urge")
        assert captured.input.header.fields[HEADER] and captured.meta.update_id == "urge-1"
        for n in range(3):
            replayed = await send_raw_update(plain, h.id, captured, f"replayed-{n}")
            assert replayed.outcome.HasField("failure") and "not attested" in replayed.outcome.failure.message
        same = await send_raw_update(plain, h.id, captured, "urge-1")
        assert same.outcome.HasField("success")
        # An idempotent retry by whistle's own client (the same update id) gets the first result.
        again = await h.execute_update("urge", {"actor": SUPERVISOR, "note": "督办"}, result_type=dict, id="urge-1")
        assert again == first
        urges = [e for e in await events(pool, await state(h)) if e.kind == "urged"]
        assert len(urges) == 1, urges


async def test_a_captured_update_is_refused_by_the_run_after_a_continue_as_new(dev_env, demo, pool):
    """Temporal runs an update id once per run: a header copied from history, resent under its
    own id to the next run of a continue-as-new while still within max_age, would run again.
    The run carries the ids it accepted to the next (header whistle_recent_updates), which
    refuses them; new updates still run."""
    plain = await Client.connect(dev_env.client.service_client.config.target_host)  # no keys at all
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "illegal-construction", max_history_events=40)
        first_run = (await h.describe()).run_id
        await h.execute_update("urge", {"actor": SUPERVISOR, "note": "督办"}, result_type=dict, id="urge-1")
        captured = accepted_update(await h.fetch_history(), "urge")
        latest = dev_env.client.get_workflow_handle(h.id)
        for n in range(40):  # urged until the run continues as new
            if (await latest.describe()).run_id != first_run:
                break
            await latest.execute_update("urge", {"actor": SUPERVISOR, "note": f"再催 {n}"}, result_type=dict, id=f"urge-more-{n}")
        assert (await latest.describe()).run_id != first_run
        urged = len([e for e in await events(pool, await state(latest)) if e.kind == "urged"])
        replayed = await send_raw_update(plain, h.id, captured, "urge-1")
        assert replayed.outcome.HasField("failure"), replayed
        failure = replayed.outcome.failure
        assert "was applied already" in failure.message and failure.application_failure_info.type == "AlreadyApplied", failure
        # Whistle's own client retrying with the same id (signed anew) is told the same: as HTTP, 409.
        with pytest.raises(WorkflowUpdateFailedError) as retried:
            await latest.execute_update("urge", {"actor": SUPERVISOR, "note": "督办"}, result_type=dict, id="urge-1")
        from api.errors import refused_update

        assert refused_update(retried.value).status == 409
        await latest.execute_update("urge", {"actor": SUPERVISOR, "note": "新的"}, result_type=dict, id="urge-new")
        assert len([e for e in await events(pool, await state(latest)) if e.kind == "urged"]) == urged + 1
    # The carried ids are in the next run's start, and both runs replay as a production worker's
    # interceptors replay them (the continue-as-new's header is not compared on replay).
    from temporalio.worker import Replayer

    from tests.test_replay import production_interceptors
    from whistle.attest import RECENT_UPDATES_HEADER

    second = await latest.fetch_history()
    carried = json.loads(second.events[0].workflow_execution_started_event_attributes.header.fields[RECENT_UPDATES_HEADER].data)
    assert "urge-1" in carried and "urge-new" not in carried
    replayer = Replayer(workflows=[IssueWorkflow], data_converter=CONVERTER, interceptors=production_interceptors(TEST_KEYRING))
    for history in (await dev_env.client.get_workflow_handle(h.id, run_id=first_run).fetch_history(), second):
        assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None


def test_a_carried_header_that_is_not_whistles_carries_nothing_and_never_raises():
    from datetime import datetime, timedelta, timezone

    from temporalio.api.common.v1 import Payload

    from whistle.attest import carried_updates

    now = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    carry = lambda data: carried_updates(Payload(data=data if isinstance(data, bytes) else json.dumps(data).encode()), now)  # noqa: E731
    good = (now - timedelta(minutes=5)).isoformat()
    assert carry({"urge-1": good}) == {"urge-1": now - timedelta(minutes=5)}
    assert carry({"naive": "2026-11-24T11:00:00", "future": "9999-01-01T00:00:00+00:00", "number": 5,
                  "garbage": "x", "ok": good}) == {"ok": now - timedelta(minutes=5)}  # entry by entry
    for data in ([good], "s", 3, None, b"not json", b"[" * 100_000 + b"]" * 100_000):
        assert carry(data) == {}
    assert carried_updates(None, now) == {}


async def test_an_expired_attestation_is_refused(dev_env, demo, pool):
    target = dev_env.client.service_client.config.target_host
    late = await Client.connect(target, data_converter=CONVERTER, interceptors=[
        ActorAttestation(TEST_ACTOR_KEYS, TEST_KEYRING, clock=lambda: time.time() - TEST_ACTOR_KEYS.max_age - 60)])
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "tree-trimming")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await late.get_workflow_handle(h.id).execute_update("urge", {"actor": SUPERVISOR, "note": "x"})
        assert err.value.cause.type == "Forbidden" and "expired" in err.value.cause.message
        assert not [e for e in await events(pool, await state(h)) if e.kind == "urged"]


async def test_a_start_copied_from_history_never_runs(dev_env, demo, pool):
    """The review's restart of a closed issue: its encrypted input and start header copied from
    history and started again under its id (ALLOW_DUPLICATE). The copy is signed, but its time is
    the original start's: past the window, the worker refuses its first task, so it never acts;
    the API says what holds the id."""
    from temporalio.api.common.v1 import WorkflowType
    from temporalio.api.enums.v1 import WorkflowIdReusePolicy
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest

    from tests.conftest import TEST_ACTOR_ENTRY
    from whistle.attest import foreign_start

    target = dev_env.client.service_client.config.target_host
    # A 4-second window: wide enough for a loaded machine to start the issue within it (the
    # time is signed in whole seconds), short enough to wait out.
    brief = await Client.connect(target, data_converter=CONVERTER, interceptors=[
        ActorAttestation(ActorKeys.parse(TEST_ACTOR_ENTRY, max_age=4), TEST_KEYRING)])
    plain = await Client.connect(target)
    async with serve_api(SimpleNamespace(client=brief), demo, pool) as api:  # its API and worker too
        tq = api.task_queue
        h = await start(brief, tq, "tree-trimming")
        history = await h.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        assert started.header.fields[START_HEADER]
        await h.terminate("closed")  # a closed issue
        before = await state_row(pool, h.id)
        await asyncio.sleep(5)
        await plain.workflow_service.start_workflow_execution(StartWorkflowExecutionRequest(
            namespace="default", workflow_id=h.id, workflow_type=WorkflowType(name="IssueWorkflow"),
            task_queue=TaskQueue(name=tq), input=started.input, header=started.header, request_id=str(uuid.uuid4()),
            workflow_id_reuse_policy=WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE))
        copy = brief.get_workflow_handle(h.id)

        async def failed_tasks() -> list[str]:
            return [e.workflow_task_failed_event_attributes.failure.message
                    async for e in copy.fetch_history_events() if e.HasField("workflow_task_failed_event_attributes")]

        failures = await polled(failed_tasks, bool)  # until a worker has taken the copy's first task
        assert failures and "not attested" in failures[0] and "expired" in failures[0], failures
        assert not [e async for e in copy.fetch_history_events() if e.HasField("workflow_task_completed_event_attributes")]
        assert await state_row(pool, h.id) == before  # it wrote nothing
        assert "expired" in (await foreign_start(brief, h.id) or "")
        r = await api.http.get(f"/v1/issues/{h.id.removeprefix('issue-')}", headers=key("supervisor"))
        assert r.status_code == 503 and "started outside whistle" in r.json()["error"], r.text
        await copy.terminate("test")


async def state_row(pool, workflow_id: str):
    async with pool.acquire() as conn:
        return await conn.fetchrow("SELECT snapshot, updated_at FROM issues WHERE workflow_id = $1", workflow_id)


async def test_a_client_with_another_actor_key_is_refused_in_every_workflow(dev_env, demo, pool):
    """Every update of every workflow is checked (here IssueWorkflow and the evaluation round)."""
    from workflows.evaluation import ReverseEvaluationWorkflow

    target = dev_env.client.service_client.config.target_host
    stranger = await Client.connect(
        target, data_converter=CONVERTER,
        interceptors=[ActorAttestation(ActorKeys.parse(Keyring.new_entry("stranger")))],
    )
    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "tree-trimming")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await stranger.get_workflow_handle(h.id).execute_update("urge", {"actor": SUPERVISOR, "note": "x"})
        assert isinstance(err.value.cause, ApplicationError) and err.value.cause.type == "Forbidden"
        assert "not attested" in err.value.cause.message
        ev = stranger.get_workflow_handle(f"evaluation-{uuid.uuid4().hex[:6]}")
        with pytest.raises(Exception):
            await ev.execute_update(ReverseEvaluationWorkflow.rate, {})


def test_attestation_binds_workflow_update_id_body_and_time():
    keys = TEST_ACTOR_KEYS
    body = {"actor": SUPERVISOR, "note": "督办"}
    now = time.time()
    mac = keys.sign("issue-a", "urge", "u-1", [body], issued_at=now)
    from schemas.actions import Urge

    received = Urge.model_validate(body)
    assert keys.verify("issue-a", "urge", "u-1", [received], mac, now)
    assert not keys.verify("issue-b", "urge", "u-1", [received], mac, now)
    assert not keys.verify("issue-a", "escalate", "u-1", [received], mac, now)
    assert not keys.verify("issue-a", "urge", "u-2", [received], mac, now)
    assert not keys.verify("issue-a", "urge", "u-1", [Urge.model_validate(body | {"note": "别的"})], mac, now)
    assert not keys.verify("issue-a", "urge", "u-1", [received], None, now)
    kid, iat, digest = mac.split(":")
    assert not keys.verify("issue-a", "urge", "u-1", [received], f"unknown-kid:{iat}:{digest}", now)
    assert not keys.verify("issue-a", "urge", "u-1", [received], f"{kid}:{int(iat) + 1}:{digest}", now)  # the time is signed
    # Good for max_age either side of its time (clock skew), not after.
    assert keys.verify("issue-a", "urge", "u-1", [received], mac, now + keys.max_age - 1)
    assert keys.verify("issue-a", "urge", "u-1", [received], mac, now - keys.max_age + 1)
    assert "expired" in keys.refusal("issue-a", "urge", "u-1", [received], mac, now + keys.max_age + 2)
    # A start's signature: its workflow, type and input, against its run's start time.
    from schemas.issue import IssueWorkflowInput
    from tests.helpers import intake

    given = IssueWorkflowInput(intake=intake("tree-trimming"))
    signed = keys.sign_start("issue-a", "IssueWorkflow", [given], issued_at=now)
    same = IssueWorkflowInput.model_validate_json(given.model_dump_json())
    assert keys.start_refusal("issue-a", "IssueWorkflow", [same], signed, now) is None
    assert keys.start_refusal("issue-a", "IssueWorkflow", [same], signed, None) is None  # times not compared
    assert keys.start_refusal("issue-b", "IssueWorkflow", [same], signed, now)
    changed = same.model_copy(update={"intake": same.intake.model_copy(update={"description": "别的"})})
    assert keys.start_refusal("issue-a", "IssueWorkflow", [changed], signed, now)
    assert "expired" in keys.start_refusal("issue-a", "IssueWorkflow", [same], signed, now + 3600)
    assert keys.start_refusal("issue-a", "urge", [same], mac, now)  # an update's header is no start's
    # Rotation: the new key signs, the old one still verifies.
    old, new = Keyring.new_entry("old"), Keyring.new_entry("new")
    rotated = ActorKeys.parse(f"{new},{old}")
    assert rotated.verify("issue-a", "urge", "u-1", [received], ActorKeys.parse(old).sign("issue-a", "urge", "u-1", [body]))
    assert rotated.sign("issue-a", "urge", "u-1", [body]).startswith("new:")


async def test_both_halves_of_the_intakes_update_with_start_are_checked(dev_env, demo, pool):
    """The intake's one call (start + register update) signed with another key: a new issue's
    start never runs a step (nothing registered, nothing written); on a running issue the server
    refuses the start and the update never reaches the issue."""
    from whistle.intake import submit_issue

    target = dev_env.client.service_client.config.target_host
    stranger = await Client.connect(target, data_converter=CONVERTER,
                                    interceptors=[ActorAttestation(ActorKeys.parse(Keyring.new_entry("stranger")))])
    async with issue_worker(dev_env.client, demo, pool) as tq:
        report = intake_of("tree-trimming")
        with pytest.raises((asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError)):
            await asyncio.wait_for(submit_issue(stranger, report, tq), 3)
        forged = dev_env.client.get_workflow_handle(report.workflow_id)
        failures = [e.workflow_task_failed_event_attributes.failure.message
                    async for e in forged.fetch_history_events() if e.HasField("workflow_task_failed_event_attributes")]
        assert failures and "not attested" in failures[0] and "unknown key id" in failures[0], failures
        assert await state_row(pool, report.workflow_id) is None
        await forged.terminate("test")

        running = intake_of("tree-trimming")
        h, created, s = await submit_issue(dev_env.client, running, tq)
        length = (await h.describe()).raw_description.workflow_execution_info.history_length
        _, created_by_stranger, nothing = await submit_issue(stranger, running, tq)
        assert created and not created_by_stranger and nothing is None
        assert (await h.describe()).raw_description.workflow_execution_info.history_length == length
        # The register update, sent alone with another key, is refused before it reaches history.
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await stranger.get_workflow_handle(h.id).execute_update(IssueWorkflow.register)
        assert err.value.cause.type == "Forbidden" and "'register' is not attested" in err.value.cause.message
        assert (await state(h)).seq == s.seq


async def test_a_worker_refuses_to_run_without_attestation(dev_env, demo, pool):
    from activities.notifier import MemoryNotifier
    from worker import build_worker

    plain = await Client.connect(dev_env.client.service_client.config.target_host, data_converter=CONVERTER)
    with pytest.raises(ValueError, match="actor attestation"):
        build_worker(plain, demo, pool, MemoryNotifier(), "tq-none")


async def test_validators_do_not_run_on_replay_so_keys_may_change(dev_env, demo, pool):
    """A replay under other actor keys (rotated, or none) replays: the check is in the validator."""
    from temporalio.worker import Replayer

    from tests.helpers import act
    from whistle.temporal import data_converter

    async with issue_worker(dev_env.client, demo, pool) as tq:
        h = await start(dev_env.client, tq, "tree-trimming")
        await act(h, "urge", actor=SUPERVISOR, note="督办")
    history = await h.fetch_history()
    from tests.conftest import TEST_KEYRING

    other = ActorAttestation(ActorKeys.parse(Keyring.new_entry("other")), TEST_KEYRING)
    for interceptors in ([other], []):
        replayer = Replayer(workflows=[IssueWorkflow], data_converter=data_converter(TEST_KEYRING), interceptors=interceptors)
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure


# ---------------------------------------------------------------------------------- 1. the Temporal client's transport
def test_temporal_environment_configuration_reaches_the_client(tmp_path):
    """TEMPORAL_* (the SDK's environment configuration) gives TLS, mTLS and the API key;
    WHISTLE_TEMPORAL_ADDRESS / _NAMESPACE win when set."""
    from temporalio.service import TLSConfig

    from whistle.temporal import connect_config

    assert connect_config(env={}) == {"target_host": "127.0.0.1:7233", "namespace": "default"}
    ca, cert, key_file = (tmp_path / n for n in ("ca.pem", "client.pem", "client.key"))
    for path, text in ((ca, "CA"), (cert, "CERT"), (key_file, "KEY")):
        path.write_text(text)
    env = {
        "TEMPORAL_ADDRESS": "temporal.example:7233", "TEMPORAL_NAMESPACE": "whistle-prod",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(ca), "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key_file), "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
    }
    config = connect_config(env=env)
    assert config["target_host"] == "temporal.example:7233" and config["namespace"] == "whistle-prod"
    tls = config["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key) == (b"CA", b"CERT", b"KEY")
    assert tls.domain == "temporal.internal"
    cloud = connect_config(env={"TEMPORAL_ADDRESS": "x.tmprl.cloud:7233", "TEMPORAL_API_KEY": "secret"})
    assert cloud["api_key"] == "secret" and cloud["tls"] is True  # an API key goes over TLS
    override = connect_config("10.0.0.5:7233", "other", env=env)
    assert override["target_host"] == "10.0.0.5:7233" and override["namespace"] == "other"


async def test_tls_settings_are_used_when_connecting(dev_env, monkeypatch):
    """With TEMPORAL_TLS=true the client speaks TLS: the plain dev server does not answer it."""
    from whistle.temporal import connect

    address = dev_env.client.service_client.config.target_host
    monkeypatch.setenv("TEMPORAL_TLS", "true")
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(connect(address), 20)
    monkeypatch.delenv("TEMPORAL_TLS")
    assert (await connect(address)).namespace == "default"


# ---------------------------------------------------------------------------------- the HTTP edges
GRID_KEY = key("grid-heping-a1-c1-g1")
HOTLINE_KEY = key("hotline-12345")
PHONE = "13977778888"


@pytest.fixture
async def api(dev_env, demo, pool):
    from activities.notifier import MemoryNotifier

    async with serve_api(dev_env, demo, pool) as a:
        a.app.state.deps.notifier = a.notifier = MemoryNotifier()
        yield a


def body(**extra):
    return {"channel": "walkin", "reference": f"s-{uuid.uuid4().hex[:10]}", "category": "tree-trimming",
            "grid_id": "heping-a1-c1-g1", "description": "树枝挡路"} | extra


async def act_on(api, iid, action, headers, **payload):
    return await api.http.post(f"/v1/issues/{iid}/actions/{action}", json=payload, headers=headers)


# 2. satisfaction comes from residents only
async def test_a_handler_never_gets_the_feedback_token(api):
    walkin = body(reporter={"phone": PHONE})
    r = await api.http.post("/v1/issues", json=walkin, headers=GRID_KEY)
    assert r.status_code == 201 and r.json().get("feedback_token") is None
    again = await api.http.post("/v1/issues", json=walkin, headers=GRID_KEY)
    assert again.status_code == 200 and again.json().get("feedback_token") is None
    # ... the resident gets it through the notifier (again on resubmission: a retried delivery).
    [(iid, reporter, token), repeated] = api.notifier.tokens
    assert iid == r.json()["issue_id"] and reporter.phone == PHONE and repeated[2] == token
    # and the supervisor's key does not get it either
    r = await api.http.post("/v1/issues", json=body(channel="hotline"), headers=key("supervisor"))
    assert r.status_code == 201 and r.json().get("feedback_token") is None
    # An intake service acts for the resident: it gets the token to pass on.
    r = await api.http.post("/v1/issues", json=body(channel="hotline", reporter={"phone": PHONE}), headers=HOTLINE_KEY)
    assert r.status_code == 201 and r.json()["feedback_token"]


OTHER_PHONE = "13611112222"


async def test_a_resubmission_never_redirects_the_feedback_token(api):
    """The token goes to the contact recorded with the issue at its first intake, never to one a
    resubmission gives; an issue with no reporter has no token for anyone."""
    from whistle.tokens import feedback_token

    patrol = body(channel="patrol")
    r = await api.http.post("/v1/issues", json=patrol, headers=GRID_KEY)
    assert r.status_code == 201
    for again in (patrol | {"reporter": {"phone": OTHER_PHONE}}, patrol | {"description": f"树枝挡路 {OTHER_PHONE}"}):
        r = await api.http.post("/v1/issues", json=again, headers=GRID_KEY)
        assert r.status_code == 200 and r.json().get("feedback_token") is None
    assert api.notifier.tokens == []  # nothing to the phone the resubmission named
    walkin = body(reporter={"phone": PHONE})
    assert (await api.http.post("/v1/issues", json=walkin, headers=GRID_KEY)).status_code == 201
    r = await api.http.post("/v1/issues", json=walkin | {"reporter": {"phone": OTHER_PHONE}}, headers=GRID_KEY)
    assert r.status_code == 200
    assert [t[1].phone for t in api.notifier.tokens] == [PHONE, PHONE]
    # Open311: a retry under the same Idempotency-Key is the same request, whatever contact it names.
    form = {"api_key": "key-open311-client", "service_code": "tree-trimming", "address_id": "heping-a1-c1-g1",
            "description": "树枝挡路", "phone": PHONE}
    retry = {"Idempotency-Key": f"o-{uuid.uuid4().hex[:8]}"}
    assert (await api.http.post("/open311/v2/requests.json", data=form, headers=retry)).status_code == 200
    assert (await api.http.post("/open311/v2/requests.json", data=form | {"phone": OTHER_PHONE}, headers=retry)).status_code == 200
    assert OTHER_PHONE not in [t[1].phone for t in api.notifier.tokens] and len(api.notifier.tokens) == 4
    # An intake service's issue without a reporter: no token either; and a token made for such an
    # issue (before this rule) is refused with the reason.
    r = await api.http.post("/v1/issues", json=body(channel="hotline"), headers=HOTLINE_KEY)
    assert r.status_code == 201 and r.json()["feedback_token"] is None
    iid = r.json()["issue_id"]
    r = await api.http.post(f"/v1/issues/{iid}/actions/feedback", json={"satisfied": True},
                            headers={"X-Feedback-Token": feedback_token("test-secret", iid)})
    assert r.status_code == 409 and "no reporter" in r.json()["error"]


async def test_a_handler_cannot_rate_a_patrol_issue(api):
    r = await api.http.post("/v1/issues", json=body(channel="patrol"), headers=GRID_KEY)
    iid = r.json()["issue_id"]
    assert r.json().get("feedback_token") is None and api.notifier.tokens == []
    assert (await act_on(api, iid, "resolve", GRID_KEY, summary="剪了")).status_code == 200
    r = await act_on(api, iid, "feedback", GRID_KEY, satisfied=True)
    assert r.status_code == 403
    r = await api.http.post(f"/v1/issues/{iid}/actions/feedback", json={"satisfied": True},
                            headers={"X-Feedback-Token": "guessed-token-value"})
    assert r.status_code == 401


# 3. a unit creates issues only inside its own scope, on every route
@pytest.mark.parametrize(("who", "fields"), [
    ("grid-heping-a1-c1-g1", {"grid_id": "donghua-a2-c4-g2"}),
    ("community-heping-a1-c1", {"grid_id": "jianguo-a1-c1-g1"}),
    ("street-heping", {"grid_id": "jianguo-a2-c4-g2", "channel": "patrol"}),
])
async def test_units_submit_only_inside_their_scope(api, who, fields):
    r = await api.http.post("/v1/issues", json=body(**fields), headers=key(who))
    assert r.status_code == 403 and "outside the scope" in r.json()["error"]
    inside = await api.http.post("/v1/issues", json=body(), headers=key(who))
    assert inside.status_code == 201


async def test_units_cannot_submit_through_open311_either(api):
    form = {"api_key": "key-grid-heping-a1-c1-g1", "service_code": "tree-trimming", "address_id": "jianguo-a2-c4-g2",
            "description": "树倒了"}
    r = await api.http.post("/open311/v2/requests.json", data=form)
    assert r.status_code == 403
    r = await api.http.post("/open311/v2/requests.json", data=form | {"address_id": "heping-a1-c1-g1"})
    assert r.status_code == 403  # a unit's channels are patrol and walkin
    r = await api.http.post("/open311/v2/requests.json", data=form | {"api_key": "key-open311-client"})
    assert r.status_code == 200


# 4. the public feed
CHINESE = "光华里社区第一网格 3号楼302室 王小明 13977778888"


async def test_open311_feed_publishes_no_contact_details(api, pool):
    r = await api.http.post("/v1/issues", headers=HOTLINE_KEY, json=body(
        channel="hotline", grid_id=None, address=CHINESE,
        description="楼道堆物，电话13977778888，身份证110101199003074518，邮箱wang.xm@163.com，5栋2单元1201"))
    assert r.status_code == 201, r.text
    hotline_id = r.json()["issue_id"]
    form = {"api_key": "key-open311-client", "service_code": "tree-trimming", "lat": "39.951", "long": "116.39",
            "address_string": "和平里 3号楼302室",
            "description": "树枝压到电线，我是张三 139-1234-5678，邮箱zs@example.cn，住2单元502"}
    r = await api.http.post("/open311/v2/requests.json", data=form)
    assert r.status_code == 200, r.text
    open311_id = r.json()[0]["service_request_id"]
    for fmt in ("json", "xml"):
        feed = (await api.http.get(f"/open311/v2/requests.{fmt}")).text
        for secret in (PHONE, "1234-5678", "12345678", "110101199003074518", "wang.xm@163.com", "zs@example.cn",
                       "302室", "2单元502", "1201", "王小明", "39.951"):
            # Not within a longer number: a timestamp's microseconds may read ...451201Z.
            assert not re.search(rf"(?<!\d){re.escape(secret)}(?!\d)", feed), (fmt, secret)
    published = {x["service_request_id"]: x for x in (await api.http.get("/open311/v2/requests.json")).json()}
    assert "description" not in published[hotline_id]  # a hotline call is not a public post
    assert published[open311_id]["description"].startswith("树枝压到电线") and "[电话已隐去]" in published[open311_id]["description"]
    assert published[hotline_id]["address"] == "光华里社区"  # the community, not the door
    # The read model keeps no contact details in clear either.
    async with pool.acquire() as conn:
        snapshots = " ".join(str(r["snapshot"]) for r in await conn.fetch("SELECT snapshot FROM issues"))
    for secret in (PHONE, "110101199003074518", "wang.xm@163.com", "1234-5678", "zs@example.cn"):
        assert secret not in snapshots, secret
    # ... but those who may call back still can: the phone joined the encrypted contact.
    shown = (await api.http.get(f"/v1/issues/{hotline_id}", headers=key("supervisor"))).json()
    assert shown["reporter"]["phone"] == PHONE and shown["reporter"]["email"] == "wang.xm@163.com"


@pytest.mark.parametrize(("text", "hidden", "kept"), [
    ("光华里社区第一网格 3号楼302室 王小明 13977778888", ["302室", "13977778888"], ["光华里社区第一网格", "3号楼"]),
    ("电话：010-6512 3456，身份证11010119900307451X", ["6512", "11010119900307451X"], ["电话"]),
    ("和平里5栋2单元1201漏水，联系+86 139 7777 8888", ["1201", "7777"], ["和平里", "漏水"]),
    ("邮箱 li.si@example.com.cn 反映12号院3号楼1203噪音", ["li.si@example.com.cn", "1203"], ["噪音", "12号院"]),
    ("路灯坏了三天，2026年11月20日下午3点报修", [], ["路灯坏了三天，2026年11月20日下午3点报修"]),
    # Full-width digits, other groupings and separators, parenthesised area codes.
    ("楼下餐馆油烟太大，我电话１３９７７７７８８８８，请回电", ["１３９７７７７８８８８"], ["楼下餐馆油烟太大", "请回电"]),
    ("噪音扰民，联系人王先生139.7777.8888", ["7777", "8888"], ["噪音扰民，联系人王先生"]),
    ("井盖丢了，打139 777 78888找我", ["777", "78888"], ["井盖丢了", "找我"]),
    ("单位座机(010)8456-1234，工作日可接", ["8456", "1234"], ["单位座机", "工作日可接"]),
    ("物业电话010－84561234不接", ["84561234"], ["物业电话", "不接"]),
    # Door numbers: the building stays.
    ("我家住3-2-302，楼上漏水", ["2-302", "302"], ["我家住3-", "楼上漏水"]),
    ("和平里5号楼2门301的住户半夜装修", ["2门301", "301"], ["和平里5号楼", "的住户半夜装修"]),
    ("光华里三号楼三〇二室门口堆物", ["三〇二"], ["光华里三号楼", "门口堆物"]),
    ("5-1-101楼道灯不亮", ["1-101", "101"], ["5-", "楼道灯不亮"]),
    # ID numbers spaced, and the old 15-digit ones.
    ("身份证110101 19900307 1234，办证受阻", ["110101", "19900307"], ["办证受阻"]),
    ("老身份证号110101900307123，补办不了", ["110101900307123"], ["补办不了"]),
    # E-mail addresses with a full-width at sign or a Chinese full stop for the dot.
    ("回复请发邮箱wxm＠qq.com。谢谢", ["wxm", "qq.com"], ["回复请发邮箱", "。谢谢"]),
    ("邮箱wxm@qq。com，请回复", ["wxm", "qq。com"], ["邮箱", "，请回复"]),
])
def test_redaction_of_realistic_chinese_text(text, hidden, kept):
    from schemas.text import redact_for_publication

    out = redact_for_publication(text)
    assert not [h for h in hidden if h in out], out
    assert all(k in out for k in kept), out


@pytest.mark.parametrize("text", [
    "2026-11-24上午10:30路灯还是不亮",
    "2026.11.24晚上8点，3棵树倒在路上",
    "损失1,234.50元，涉及30户居民",
    "出租屋2室1厅被隔成了8间",
    "东门100米处有个坑，已经等了15天",
    "违建约120平方米，12345热线和110都打过",
    "见通知第3-2页，编号2026-001",
    "13:45到14:30之间停水",
])
def test_redaction_leaves_ordinary_text_alone(text):
    from schemas.text import redact_contacts, redact_for_publication

    assert redact_for_publication(text) == text
    assert redact_contacts(text) == text


def test_intake_separates_contacts_written_any_way():
    """What publication hides, intake takes out of the text too: phones and e-mails join the
    reporter's contact (as the contact accepts them), ID numbers go."""
    from whistle.intake import separate_contacts

    description, address, reporter = separate_contacts(
        "油烟扰民，电话１３９７７７７８８８８，邮箱wxm＠qq.com，身份证110101 19900307 1234", "和平里5号楼2门301", None)
    assert reporter.phone == "13977778888" and reporter.email == "wxm@qq.com"
    assert "８８８８" not in description and "wxm" not in description and "19900307" not in description
    assert description.startswith("油烟扰民，电话[电话已隐去]")
    assert address == "和平里5号楼2门301"  # door numbers stay for the handlers (never published)
    for written, phone in (("139.7777.8888", "139-7777-8888"), ("(010)8456-1234", "(010)8456-1234"),
                           ("010－84561234", "010-84561234"), ("139 777 78888", "139-777-78888")):
        assert separate_contacts(f"请回电{written}", None, None)[2].phone == phone, written
    assert separate_contacts("邮箱wxm@qq。com", None, None)[2].email == "wxm@qq.com"


# 5. one rule for reporter data
async def test_codec_server_shows_the_contact_to_the_supervisor_only(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as a:  # the codec server asks for a key
        r = await a.http.post("/v1/issues", headers=HOTLINE_KEY, json=body(channel="hotline", reporter={"phone": PHONE}))
        h = dev_env.client.get_workflow_handle(r.json()["workflow_id"])
        history = await Client.connect(dev_env.client.service_client.config.target_host)
        raw = await history.get_workflow_handle(h.id).fetch_history()
        start = raw.events[0].workflow_execution_started_event_attributes.input
        from google.protobuf import json_format

        payloads = json_format.MessageToJson(start)
        for who, shows in (("ops", False), ("supervisor", True)):
            decoded = await a.http.post("/codec/decode", content=payloads, headers={"Authorization": f"Bearer key-{who}"})
            assert decoded.status_code == 200
            data = "".join(base64_data(p) for p in decoded.json()["payloads"])
            assert (PHONE in data) is shows, who
            assert "树枝挡路" in data  # the rest stays readable
        assert (await a.http.post("/codec/decode", content=payloads, headers={"Authorization": "Bearer key-grid-heping-a1-c1-g1"})).status_code == 403
        # Encode: the supervisor and ops only.
        assert (await a.http.post("/codec/encode", content=payloads, headers={"Authorization": "Bearer key-hotline-12345"})).status_code == 403


def base64_data(p: dict) -> str:
    import base64

    return base64.b64decode(p.get("data", "")).decode("utf-8", "replace")


async def test_a_department_that_declined_no_longer_sees_the_contact(api):
    r = await api.http.post("/v1/issues", headers=HOTLINE_KEY, json=body(channel="hotline", reporter={"phone": PHONE}))
    iid = r.json()["issue_id"]
    await act_on(api, iid, "escalate", GRID_KEY, reason="r")
    await act_on(api, iid, "dispatch", key("street-heping"))
    dept = key("dept-lvhua")
    assert (await api.http.get(f"/v1/issues/{iid}", headers=dept)).json()["reporter"]["phone"] == PHONE
    r = await act_on(api, iid, "decline", dept, reason="非本部门")
    assert r.status_code == 200 and r.json()["reporter"] is None
    assert (await api.http.get(f"/v1/issues/{iid}", headers=dept)).json()["reporter"] is None
    assert (await api.http.get(f"/v1/issues/{iid}", headers=key("ops"))).json()["reporter"] is None


async def test_location_errors_do_not_echo_the_input(api):
    for fields in ({"grid_id": None, "address": f"火星基地 {PHONE}"}, {"grid_id": f"g-{PHONE}"},
                   {"grid_id": None, "lat": 10.0, "long": 10.0}):
        r = await api.http.post("/v1/issues", json=body(channel="hotline", **fields), headers=HOTLINE_KEY)
        assert r.status_code == 422 and PHONE not in r.text and "10.0" not in r.text, r.text


# 6. secrets on disk (whistle dev's data directory: see also test_dev_stack)
def test_secrets_are_written_owner_only(tmp_path, demo):
    from whistle.attest import ensure_actor_key_file
    from whistle.codec import ensure_key_file, write_secret
    from whistle.principals import write_demo_principals

    made = [ensure_key_file(tmp_path / "codec.key"), ensure_actor_key_file(tmp_path / "actor.key"),
            *write_demo_principals(tmp_path, demo)]
    write_secret(tmp_path / "token.secret", "s")
    made.append(tmp_path / "token.secret")
    for path in made:
        assert path.stat().st_mode & 0o777 == 0o600, path
    with pytest.raises(FileExistsError):  # never rewritten (and never briefly world-readable)
        write_secret(tmp_path / "token.secret", "other")


# 7. Open311 date filters
@pytest.mark.parametrize("query", [
    "end_date=0001-01-01T00:00:00-14:00", "end_date=0001-03-01T00:00:00Z", "start_date=0001-01-01T00:00:00%2B14:00",
    "start_date=9999-12-31T23:59:59-14:00", "end_date=1969-12-31T00:00:00Z",
])
async def test_open311_dates_out_of_range_are_400(api, query):
    for fmt in ("json", "xml"):
        r = await api.http.get(f"/open311/v2/requests.{fmt}?{query}")
        assert r.status_code == 400, (query, r.text)


# 8. control characters
@pytest.mark.parametrize("char", ["\x01", "\x08", "\x0b", "\x1b", "\x7f", "\ufffe"])
async def test_control_characters_are_refused_at_intake(api, char):
    r = await api.http.post("/v1/issues", json=body(channel="hotline", description=f"坏了{char}"), headers=HOTLINE_KEY)
    assert r.status_code == 422 and "control characters" in r.text
    assert r.json()["detail"][0]["field"] == "description"  # the field is named, not ""
    r = await api.http.post("/v1/issues", json=body(channel="hotline", reporter={"name": f"王{char}"}), headers=HOTLINE_KEY)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reporter.name"
    form = {"api_key": "key-open311-client", "service_code": "tree-trimming", "address_id": "heping-a1-c1-g1",
            "description": f"坏了{char}"}
    assert (await api.http.post("/open311/v2/requests.json", data=form)).status_code == 400
    r = await act_on(api, "hotline-x", "escalate", GRID_KEY, reason=f"r{char}")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reason"


@pytest.mark.parametrize(("fields", "named"), [
    ({"first_name": "a\x1b[31mb"}, "first_name/last_name"),
    ({"last_name": "王\x07"}, "first_name/last_name"),
    ({"email": "a\x01b@x.com"}, "email"),
])
async def test_open311_refuses_control_characters_in_the_reporter(api, fields, named):
    """Open311 builds the reporter from its own form fields: they are checked like the rest."""
    form = {"api_key": "key-open311-client", "service_code": "tree-trimming", "address_id": "heping-a1-c1-g1",
            "description": "树枝挡路"} | fields
    for fmt in ("json", "xml"):
        r = await api.http.post(f"/open311/v2/requests.{fmt}", data=form)
        assert r.status_code == 400, r.text
        assert "control characters" in r.text and named in r.text, r.text
    assert api.notifier.tokens == []  # nothing was submitted


def test_the_xml_writer_is_well_formed_whatever_is_stored():
    from xml.etree.ElementTree import fromstring

    from api.open311 import render

    stored = {"service_request_id": "x", "description": "".join(chr(c) for c in range(32)) + "\ufffe\ud800 ok"}
    fromstring(render("xml", [stored], "service_requests", "request").body)  # raises if not well-formed


# 9. the edges
async def test_a_flood_of_bad_keys_meets_429_with_retry_after(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool, rate_limit_failed_keys="5/minute") as a:
        codes = [(await a.http.get("/v1/issues", headers={"X-API-Key": f"bad-{i}"})).status_code for i in range(8)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
        r = await a.http.get("/v1/issues", headers={"X-API-Key": "bad"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        r = await a.http.post("/open311/v2/requests.json", data={"api_key": "bad", "service_code": "x"})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


async def test_open311_429_has_retry_after(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool, rate_limit_address="2/minute") as a:
        codes = [(await a.http.get("/open311/v2/services.xml")) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        assert int(codes[-1].headers["Retry-After"]) > 0


async def test_a_chunked_body_over_the_limit_is_413(api):
    async def chunks():
        for _ in range(80):
            yield b"x" * 1024

    r = await api.http.post("/v1/issues", content=chunks(), headers=HOTLINE_KEY | {"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "request body too large"


async def test_405_says_allow(api):
    r = await api.http.delete("/v1/issues")
    assert r.status_code == 405 and "GET" in r.headers["Allow"] and r.json()["error"]


async def test_out_of_scope_is_answered_as_no_issue(api):
    """A key outside the issue's scope gets exactly what it gets for an issue that does not
    exist, on reads and on every action: it cannot learn which issues exist, nor their stage."""
    iid = (await api.http.post("/v1/issues", json=body(channel="hotline"), headers=HOTLINE_KEY)).json()["issue_id"]
    missing = "hotline-" + uuid.uuid4().hex[:10]
    for who in ("grid-other", "street-donghua", "dept-chengguan", "wechat-miniprogram"):
        for issue in (iid, missing):
            r = await act_on(api, issue, "resolve", key(who), summary="x")
            shown = await api.http.get(f"/v1/issues/{issue}", headers=key(who))
            assert (r.status_code, shown.status_code) == (404, 404), (who, r.text, shown.text)
            assert r.json() == shown.json() == {"error": f"no issue {issue!r}"}, (who, r.text)
    # A key inside the scope is answered as before: here the issue's own grid resolves it.
    assert (await act_on(api, iid, "resolve", GRID_KEY, summary="x")).status_code == 200


async def test_urge_refuses_an_unknown_unit(api):
    iid = (await api.http.post("/v1/issues", json=body(channel="hotline"), headers=HOTLINE_KEY)).json()["issue_id"]
    r = await act_on(api, iid, "urge", key("supervisor"), note="督办", unit_id="no-such-unit")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "unit_id"
    assert (await act_on(api, iid, "urge", key("supervisor"), note="督办", unit_id="heping-a1-c1-g1")).status_code == 200


async def test_openapi_declares_the_key_the_422_shape_and_typed_actions(api):
    doc = (await api.http.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "your API key"}
    assert schemes["FeedbackToken"]["in"] == "header" and schemes["FeedbackToken"]["name"] == "X-Feedback-Token"
    # Every operation says how it is authenticated: a key, a key or a feedback token (either), or
    # explicitly nothing (published data) — none leaves it unsaid under /v1.
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if path.startswith("/v1/"):
                assert "security" in op, (method, path)
    for action in ("accept", "resolve", "escalate", "dispatch", "decline", "request_extension", "decide_extension",
                   "assign", "urge", "review"):
        assert doc["paths"][f"/v1/issues/{{issue_id}}/actions/{action}"]["post"]["security"] == [{"APIKeyHeader": []}]
    assert doc["paths"]["/v1/issues/{issue_id}/actions/feedback"]["post"]["security"] == [
        {"APIKeyHeader": []}, {"FeedbackToken": []}]
    for public in ("/v1/league/{period}", "/v1/briefings/{month}", "/v1/categories", "/v1/units"):
        assert doc["paths"][public]["get"]["security"] == [], public
    assert {"field", "message"} <= set(doc["components"]["schemas"]["ValidationError"]["properties"])
    assert "loc" not in json.dumps(doc["components"]["schemas"]["ValidationError"])
    for action in ("accept", "resolve", "escalate", "dispatch", "decline", "request_extension", "decide_extension",
                   "assign", "urge", "feedback", "review"):
        op = doc["paths"][f"/v1/issues/{{issue_id}}/actions/{action}"]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert "actor" not in doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    rating = doc["paths"]["/v1/evaluations/{quarter}/ratings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert rating["$ref"].endswith("RatingBody")
    # The generic route still answers, and a real 422 has the documented shape.
    iid = (await api.http.post("/v1/issues", json=body(channel="hotline"), headers=HOTLINE_KEY)).json()["issue_id"]
    r = await act_on(api, iid, "escalate", GRID_KEY)
    assert r.status_code == 422 and r.json()["detail"] == [{"field": "reason", "message": "Field required"}]


# 10. client addresses behind proxies, limits shared through a storage
async def test_forwarded_addresses_count_only_from_trusted_proxies(dev_env, demo, pool):
    import httpx

    from api.app import create_app

    async with serve_api(dev_env, demo, pool, rate_limit_address="2/minute", trusted_proxies="10.0.0.0/8") as a:
        async def get(peer: str, forwarded: str) -> int:
            transport = httpx.ASGITransport(app=a.app, client=(peer, 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return (await c.get("/v1/categories", headers={"X-Forwarded-For": forwarded})).status_code

        # Behind the ingress (10.1.2.3) two residents have a bucket each.
        assert [await get("10.1.2.3", "203.0.113.7") for _ in range(3)] == [200, 200, 429]
        assert await get("10.1.2.3", "198.51.100.9, 10.9.9.9") == 200
        # A client that is not a trusted proxy cannot choose its bucket by the header.
        assert [await get("192.0.2.50", f"198.51.100.{i}") for i in range(3)] == [200, 200, 429]
    assert create_app  # (the app is built by serve_api)


async def rotating_forwarded_for(url: str) -> list[int]:
    """Three requests from this loopback client, each claiming another address."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        return [(await http.get("/v1/categories", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
                for i in range(3)]


async def test_whistle_api_behind_real_uvicorn_ignores_forwarded_for_from_loopback(dev_env, db_url, tmp_path):
    """`whistle api` as deployed: uvicorn's own proxy headers (which trust 127.0.0.1 by default)
    are off, so with no WHISTLE_TRUSTED_PROXIES a loopback client rotating X-Forwarded-For still
    meets 429."""
    import httpx

    from tests.conftest import TEST_KEY_ENTRY
    from tests.test_dev_stack import WHISTLE, free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISTLE_", "TEMPORAL_"))} | {
        "WHISTLE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host, "WHISTLE_DATABASE_URL": db_url,
        "WHISTLE_TOKEN_SECRET": "t", "WHISTLE_CODEC_KEYS": TEST_KEY_ENTRY, "WHISTLE_ACTOR_KEYS": TEST_ACTOR_ENTRY,
        "WHISTLE_HOST": "127.0.0.1", "WHISTLE_API_PORT": str(port), "WHISTLE_RATE_LIMIT_ADDRESS": "2/minute",
        "WHISTLE_API_METRICS_ADDRESS": f"127.0.0.1:{free_port()}", "WHISTLE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([*WHISTLE, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=1) as http:
            for _ in range(200):
                try:
                    if (await http.get(f"{url}/livez")).status_code == 200:
                        break
                except httpx.HTTPError:
                    assert proc.poll() is None, proc.stderr.read().decode()
                    await asyncio.sleep(0.1)
        assert await rotating_forwarded_for(url) == [200, 200, 429]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def test_whistle_dev_api_ignores_forwarded_for_from_loopback(dev_env, demo, pool):
    """The same for the API `whistle dev` serves (its uvicorn runs in the stack's own loop)."""
    from tests.test_dev_stack import free_port
    from whistle.config import Settings
    from whistle.console.dev import DevStack

    s = Settings(host="127.0.0.1", api_port=free_port(), token_secret="t", rate_limit_address="2/minute")
    async with DevStack(s)._api(dev_env.client, pool, demo, TEST_KEYRING):
        assert await rotating_forwarded_for(f"http://127.0.0.1:{s.api_port}") == [200, 200, 429]


def test_rate_limit_storage_is_configurable():
    from limits.errors import ConfigurationError
    from limits.aio.storage import MemoryStorage

    from api.limits import RateLimits

    assert isinstance(RateLimits("1/minute", "1/minute", storage="memory://").limiter.storage, MemoryStorage)
    with pytest.raises(ConfigurationError):  # the URI reaches `limits`, which names what is missing
        RateLimits("1/minute", "1/minute", storage="nosuch://host")
    try:
        redis = RateLimits("1/minute", "1/minute", storage="redis://127.0.0.1:1/0")
    except ConfigurationError as exc:  # the `redis` package is not installed here
        assert "redis" in str(exc).lower()
    else:
        assert type(redis.limiter.storage).__name__ == "RedisStorage"


async def test_a_failed_token_delivery_does_not_fail_the_intake(api):
    class Down:
        async def send_feedback_token(self, *args):
            raise ConnectionError("gateway down")

    api.app.state.deps.notifier = Down()
    r = await api.http.post("/v1/issues", json=body(reporter={"phone": PHONE}), headers=GRID_KEY)
    assert r.status_code == 201 and r.json().get("feedback_token") is None


async def test_the_webhook_notifier_delivers_the_token_to_the_gateway():
    """The receiver (an SMS / e-mail gateway; here a real HTTP server) gets the contact and the
    token, under one Idempotency-Key per issue."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from activities.notifier import WebhookNotifier
    from schemas.intake import Reporter

    seen = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.headers["Idempotency-Key"], json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        await WebhookNotifier(f"http://127.0.0.1:{server.server_port}/sms").send_feedback_token(
            "walkin-1", Reporter(phone=PHONE), "tok")
    finally:
        server.shutdown()
    [(idem, message)] = seen
    assert idem == "walkin-1:feedback_token"
    assert message == {"kind": "feedback_token", "issue_id": "walkin-1", "token": "tok",
                       "reporter": {"name": None, "phone": PHONE, "email": None}}
