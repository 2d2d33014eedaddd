"""Every probe of the security review (issue 12) as a test: forged actors, faked satisfaction,
issues outside a unit's scope, reporters' data on public feeds and the codec server, secrets
on disk, and the robustness of the public edges. See docs/security.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import uuid

import pytest
import uvicorn
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.api_support import key, serve_api
from tests.conftest import CONVERTER, TEST_ACTOR_KEYS, issue_worker
from tests.helpers import SUPERVISOR, start, state
from whistle.attest import HEADER, ActorAttestation, ActorKeys
from whistle.codec import Keyring
from whistle.dev import find_binary
from workflows.issue import IssueWorkflow

FORGED = {"actor": {"id": "forged", "role": "supervisor"}, "note": "x"}


def forged_events(s) -> int:
    return sum(1 for e in s.history if e.actor is not None and e.actor.id == "forged")


# ---------------------------------------------------------------------------------- 1. forged actors
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def http_server(app):
    """The app on a real port (the `temporal` CLI reaches the codec server over HTTP)."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


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
        assert forged_events(await state(h)) == 0


async def test_cli_with_the_codec_but_without_attestation_is_forbidden_and_with_it_accepted(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api, http_server(api.app) as url:
        h = await start(dev_env.client, api.task_queue, "tree-trimming")
        codec = {"TEMPORAL_CODEC_ENDPOINT": f"{url}/codec", "TEMPORAL_CODEC_AUTH": "Bearer key-ops"}
        update = ["workflow", "update", "execute", "-w", h.id, "--name", "urge", "--input", json.dumps(FORGED)]
        r = await temporal_cli(dev_env, *update, **codec)
        assert r.returncode != 0 and "not attested" in r.stderr + r.stdout, r.stderr
        # Signed for another workflow or another body: refused too.
        other = TEST_ACTOR_KEYS.sign("issue-other", "urge", [FORGED])
        r = await temporal_cli(dev_env, *update, "--headers", f"{HEADER}={json.dumps(other)}", **codec)
        assert r.returncode != 0 and "not attested" in r.stderr + r.stdout
        assert forged_events(await state(h)) == 0
        # An operator holding the actor key (`whistle actor sign` prints this header).
        signed = TEST_ACTOR_KEYS.sign(h.id, "urge", [FORGED])
        r = await temporal_cli(dev_env, *update, "--headers", f"{HEADER}={json.dumps(signed)}", **codec)
        assert r.returncode == 0, r.stderr
        assert forged_events(await state(h)) == 1


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


def test_attestation_binds_workflow_update_and_body():
    keys = TEST_ACTOR_KEYS
    body = {"actor": SUPERVISOR, "note": "督办"}
    mac = keys.sign("issue-a", "urge", [body])
    from schemas.actions import Urge

    received = Urge.model_validate(body)
    assert keys.verify("issue-a", "urge", [received], mac)
    assert not keys.verify("issue-b", "urge", [received], mac)
    assert not keys.verify("issue-a", "escalate", [received], mac)
    assert not keys.verify("issue-a", "urge", [Urge.model_validate(body | {"note": "别的"})], mac)
    assert not keys.verify("issue-a", "urge", [received], None)
    assert not keys.verify("issue-a", "urge", [received], "unknown-kid:" + mac.partition(":")[2])
    # Rotation: the new key signs, the old one still verifies.
    old, new = Keyring.new_entry("old"), Keyring.new_entry("new")
    rotated = ActorKeys.parse(f"{new},{old}")
    assert rotated.verify("issue-a", "urge", [received], ActorKeys.parse(old).sign("issue-a", "urge", [body]))
    assert rotated.sign("issue-a", "urge", [body]).startswith("new:")


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
