"""A worker killed (SIGKILL: no drain, no graceful shutdown) while issues at every stage are
being acted on: a fresh worker that replays every task (max_cached_workflows=0) carries on with
no workflow-task failure, each interrupted action lands exactly once when its client retries
with the same update id, and the next action lands too."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from activities.notifier import MemoryNotifier
from schemas.issue import IssueState, Stage
from tests.conftest import CONVERTER, TEST_ACTOR_ENTRY, TEST_KEY_ENTRY
from tests.helpers import (
    AREA_HANDLER, COMMUNITY_HANDLER, GRID_WORKER, RESIDENT, STREET_HANDLER, SUPERVISOR, act, dept, events, start, state,
)
from whistle.config import DEMO_JURISDICTION
from whistle.db.pool import open_pool
from whistle.jurisdiction import load_jurisdiction, publish_jurisdiction

# (stage it is at, how to get it there, the action interrupted by the kill, the next action)
STAGES = {
    Stage.grid: ("illegal-construction", [], ("urge", {"actor": SUPERVISOR, "note": "催"}),
                 ("escalate", {"actor": GRID_WORKER, "reason": "违建"})),
    Stage.community: ("neighbour-dispute", [("escalate", {"actor": GRID_WORKER, "reason": "x"})],
                      ("escalate", {"actor": COMMUNITY_HANDLER, "reason": "涉及多个社区"}),
                      ("resolve", {"actor": AREA_HANDLER, "summary": "协调"})),
    Stage.area: ("shared-bikes", [("escalate", {"actor": GRID_WORKER, "reason": "x"})],
                 ("resolve", {"actor": AREA_HANDLER, "summary": "清理"}),
                 ("feedback", {"actor": RESIDENT, "satisfied": True})),
    Stage.street: ("tree-trimming", [("escalate", {"actor": GRID_WORKER, "reason": "x"})],
                   ("dispatch", {"actor": STREET_HANDLER}), ("accept", {"actor": dept("lvhua")})),
    Stage.department: ("tree-trimming", [("escalate", {"actor": GRID_WORKER, "reason": "x"}),
                                         ("dispatch", {"actor": STREET_HANDLER})],
                       ("accept", {"actor": dept("lvhua")}), ("resolve", {"actor": dept("lvhua"), "summary": "修剪"})),
    Stage.arbitration: ("tree-trimming", [("escalate", {"actor": GRID_WORKER, "reason": "x"}),
                                          ("dispatch", {"actor": STREET_HANDLER}),
                                          ("decline", {"actor": dept("lvhua"), "reason": "非本部门"})],
                        ("assign", {"actor": SUPERVISOR, "department_id": "lvhua", "to_department": "chengguan",
                                    "reason": "改派"}),
                        ("accept", {"actor": dept("chengguan")})),
    Stage.feedback: ("corridor-clutter", [("resolve", {"actor": GRID_WORKER, "summary": "清理"})],
                     ("feedback", {"actor": RESIDENT, "satisfied": False, "comment": "没清完"}),
                     ("review", {"actor": SUPERVISOR, "decision": "close", "reason": "已复核"})),
    Stage.review: ("corridor-clutter", [("resolve", {"actor": GRID_WORKER, "summary": "清理"}),
                                        ("feedback", {"actor": RESIDENT, "satisfied": False})],
                   ("review", {"actor": SUPERVISOR, "decision": "reassign", "to_department": "chengguan", "reason": "交城管"}),
                   ("accept", {"actor": dept("chengguan")})),
}


@pytest.fixture
def jurisdiction_file(tmp_path) -> Path:
    """The demo district, but the first dissatisfaction goes to review (no reopens)."""
    doc = yaml.safe_load(DEMO_JURISDICTION.read_text(encoding="utf-8"))
    doc.setdefault("policies", {})["max_reopens"] = 0
    path = tmp_path / "jurisdiction.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def spawn_worker(dev_env, db_url: str, jurisdiction: Path, task_queue: str, log: Path) -> subprocess.Popen:
    """`whistle worker` as its own process, configured by environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHISTLE_")} | {
        "WHISTLE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "WHISTLE_DATABASE_URL": db_url,
        "WHISTLE_CODEC_KEYS": TEST_KEY_ENTRY,
        "WHISTLE_ACTOR_KEYS": TEST_ACTOR_ENTRY,
        "WHISTLE_TASK_QUEUE": task_queue,
        "WHISTLE_JURISDICTION_FILE": str(jurisdiction),
        "WHISTLE_LOG_FORMAT": "json",
        "WHISTLE_METRICS_ADDRESS": "127.0.0.1:0",
    }
    out = log.open("ab")
    return subprocess.Popen([str(Path(sys.executable).parent / "whistle"), "worker"], env=env, stdout=out, stderr=out,
                            stdin=subprocess.DEVNULL, start_new_session=True)


async def wait_started(proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while b"worker.started" not in log.read_bytes():
        assert proc.poll() is None, f"the worker exited: {log.read_text()[-2000:]}"
        assert loop.time() < end, "the worker did not start"
        await asyncio.sleep(0.1)


async def when_ready(call, timeout: float = 60):
    """Retry while the server says the workflow is not ready (its task is being retried after the
    kill: a WFT that was running on the dead worker times out first), as the API's clients do
    on its 503."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            return await call()
        except RPCError as err:
            if err.status != RPCStatusCode.FAILED_PRECONDITION or loop.time() > end:
                raise
            await asyncio.sleep(0.5)


async def test_a_killed_worker_loses_nothing_at_any_stage(dev_env, pg_server, db_url, jurisdiction_file, tmp_path):
    from worker import build_worker

    j = load_jurisdiction(jurisdiction_file)
    tq = f"crash-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    async with open_pool(db_url) as pool:
        await publish_jurisdiction(pool, j)
        proc = spawn_worker(dev_env, db_url, jurisdiction_file, tq, log)
        try:
            await wait_started(proc, log)
            handles: dict[Stage, WorkflowHandle] = {}
            for stage, (category, path, _, _) in STAGES.items():
                h = await start(dev_env.client, tq, category)
                for name, payload in path:
                    await act(h, name, **payload)
                assert (await state(h)).stage == stage, stage
                handles[stage] = h
            # Every issue's next action at once; the worker dies while they are under way.
            ids = {stage: f"interrupted-{uuid.uuid4().hex[:8]}" for stage in STAGES}
            under_way = [
                asyncio.create_task(handles[stage].execute_update(name, payload, id=ids[stage], result_type=IssueState))
                for stage, (_, _, (name, payload), _) in STAGES.items()
            ]
            await asyncio.sleep(0.05)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        # A fresh worker that keeps nothing cached: every task it runs replays the whole history.
        async with build_worker(dev_env.client, j, pool, MemoryNotifier(), tq, max_cached_workflows=0):
            for task in under_way:  # the client that sent them retries with the same update id
                task.cancel()
            await asyncio.gather(*under_way, return_exceptions=True)
            for stage, (_, _, (name, payload), (next_name, next_payload)) in STAGES.items():
                h = handles[stage]
                retried = await when_ready(lambda: h.execute_update(name, payload, id=ids[stage], result_type=IssueState))
                again = await h.execute_update(name, payload, id=ids[stage], result_type=IssueState)
                assert again == retried, f"{stage}: a retry with the same id answered differently"
                s = await when_ready(lambda: act(h, next_name, **next_payload))
                kinds = [e.kind for e in await events(pool, s)]
                applied = kinds.count(kinds[retried.seq - 1])
                assert applied >= 1, stage
        from workflows.issue import IssueWorkflow

        replayer = Replayer(workflows=[IssueWorkflow], data_converter=CONVERTER)
        for stage, h in handles.items():
            history = await h.fetch_history()
            failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
            assert not failed, f"{stage}: {len(failed)} workflow task failures"
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            assert result.replay_failure is None, f"{stage}: {result.replay_failure}"
            updates = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                       and e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id == ids[stage]]
            assert len(updates) == 1, f"{stage}: the interrupted action was applied {len(updates)} times"
