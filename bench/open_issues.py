"""Many open issues: N issues open at once, each with pending timers (two reminders and its
grid deadline); the process's memory as they pile up, and how late their timers fire, against
bare Temporal workflows with the same timers and activities started alongside them.

    python -m bench.open_issues --issues 10000 --due 1200 --cache 10000

`--due` (seconds) is the grid's handle deadline: it must outlast starting every issue, so that
all are open at once (the figures say whether they were). `--cache` is the worker's
`max_cached_workflows` (WHISTLE_MAX_CACHED_WORKFLOWS; Temporal's default is 1000), for the
issues' worker and the bare workflows' alike.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import yaml
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.notifier import LogNotifier
from bench.bare import BareTimers, noop
from bench.common import report
from schemas.intake import IssueIntake
from schemas.issue import Notification
from whistle.attest import ActorAttestation, ActorKeys
from whistle.codec import Keyring
from whistle.config import DEMO_JURISDICTION
from whistle.db.throwaway import throwaway_read_model
from whistle.console.dev import find_binary
from whistle.intake import submit_issue
from whistle.jurisdiction import load_jurisdiction
from whistle.logging import configure_logging
from whistle.temporal import SEARCH_ATTRIBUTES, data_converter, quiet_runtime
from worker import build_worker



class ClockedNotifier(LogNotifier):
    """How late each deadline and reminder was acted on: the wall clock when its notification
    is sent, less the time it fell due (`at`: a timer's move is made at its own due time, so
    the read model's times say when a deadline fell due, never how late it was processed).
    The first send of each only: a retried workflow task sends again."""

    def __init__(self) -> None:
        self.late: dict[str, dict[tuple, float]] = {"overdue": {}, "reminder": {}}

    async def send(self, notification: Notification) -> None:
        n = notification
        if n.kind in self.late:
            self.late[n.kind].setdefault((n.issue_id, n.deadline_key, n.seq), time.time() - n.at.timestamp())
        await super().send(n)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"n": len(values), "p50": round(q[49], 3), "p95": round(q[94], 3), "p99": round(q[98], 3),
            "max": round(max(values), 3)}


def jurisdiction_file(directory: Path, due: int) -> Path:
    """The demo district with the grid's deadline in seconds."""
    data = yaml.safe_load(DEMO_JURISDICTION.read_text(encoding="utf-8"))
    data["policies"]["grid"] = {"handle": f"PT{due}S", "reminders": [0.5, 0.8]}
    path = directory / "jurisdiction.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def rss_mib() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


@contextlib.asynccontextmanager
async def servers(jurisdiction: Path, cache: int):
    """Temporal's dev server in memory (the SQLite file of `whistle dev` starts a few workflows a
    second under this load: the file is the bottleneck, not whistle), embedded PostgreSQL and
    the worker, in this process."""
    keyring = Keyring.parse(Keyring.new_entry("bench-1"))
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(keyring), dev_server_existing_path=str(find_binary("temporal")),
        interceptors=[ActorAttestation(ActorKeys.parse(Keyring.new_entry("bench-actor-1")))],
        search_attributes=SEARCH_ATTRIBUTES, dev_server_log_level="error",
        runtime=quiet_runtime(),
    )
    j = load_jurisdiction(jurisdiction)
    try:
        async with throwaway_read_model(j) as pool:
            task_queue = f"bench-{uuid.uuid4().hex[:6]}"
            notifier = ClockedNotifier()
            async with build_worker(env.client, j, pool, notifier, task_queue, max_cached_workflows=cache):
                yield env.client, pool, task_queue, notifier
    finally:
        await env.shutdown()


def compile_sources() -> None:
    """Bytecode for the project's modules, as `pip install` leaves it: the sandbox imports the
    workflow modules afresh for every workflow it creates (a new issue, or one evicted from the
    cache), and without bytecode (PYTHONDONTWRITEBYTECODE, a read-only checkout) it compiles
    `workflows/issue/` from source each time, which this bench would measure instead."""
    root = Path(__file__).resolve().parent.parent
    for package in ("workflows", "schemas", "activities", "whistle", "bench"):
        compileall.compile_dir(root / package, quiet=1)


async def main(issues: int, concurrency: int, due: int, cache: int) -> None:
    configure_logging("json", "ERROR")
    compile_sources()
    with tempfile.TemporaryDirectory(prefix="whistle-bench-j-") as tmp:
        async with servers(jurisdiction_file(Path(tmp), due), cache) as (client, pool, task_queue, notifier):
            await run(client, pool, task_queue, notifier, issues, concurrency, due, cache)


async def run(client, pool, task_queue: str, notifier: ClockedNotifier, issues: int, concurrency: int, due: int,
              cache: int) -> None:
    bare_tq = f"bench-bare-{uuid.uuid4().hex[:6]}"
    memory = {"idle_mib": rss_mib()}
    grids = [r["id"] for r in await pool.fetch("SELECT id FROM units WHERE level = 'grid' ORDER BY id")]
    bare_handles = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(issues):
        queue.put_nowait(i)

    async def starter() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            intake = IssueIntake(channel="patrol", reference=f"OPEN-{bare_tq}-{i}", category="noise",
                                 grid_id=grids[i % len(grids)], description="噪声扰民")
            await submit_issue(client, intake, task_queue)
            bare_handles.append(await client.start_workflow(
                BareTimers.run, due, id=f"bare-{bare_tq}-{i}", task_queue=bare_tq))

    async with Worker(client, task_queue=bare_tq, workflows=[BareTimers], activities=[noop], max_cached_workflows=cache):
        began = time.monotonic()
        await asyncio.gather(*(starter() for _ in range(concurrency)))
        started_in = time.monotonic() - began
        # Wait until every issue shows in the read model (registered, its timers set).
        while time.monotonic() < began + due:
            open_now = await pool.fetchval("SELECT count(*) FROM issues WHERE outcome IS NULL")
            if open_now >= issues:
                break
            await asyncio.sleep(1)
        registered_in = time.monotonic() - began
        missed_by_then = await pool.fetchval("SELECT count(*) FROM penalties")
        memory["all_open_mib"] = rss_mib()
        # Wait for every deadline, then for the workflows to act on it.
        deadline = time.monotonic() + due + 600
        while time.monotonic() < deadline:
            if await pool.fetchval("SELECT count(*) FROM penalties WHERE kind = 'handle_overdue'") >= issues:
                break
            await asyncio.sleep(5)
        memory["after_deadlines_mib"] = rss_mib()
        # The bare workflows' lateness, from those that have finished by now (both kinds fired
        # under the same load; a backlog leaves some of each still waiting).
        done = await asyncio.gather(*(asyncio.wait_for(h.result(), 10) for h in bare_handles), return_exceptions=True)
        bare = [r for r in done if isinstance(r, float)]
    lateness = list(notifier.late["overdue"].values())
    reminders = list(notifier.late["reminder"].values())
    issue_p, bare_p = percentiles(lateness), percentiles(bare)
    report("open_issues", {
        "command": f"python -m bench.open_issues --issues {issues} --concurrency {concurrency} --due {due} --cache {cache}",
        "issues": issues,
        "started_in_s": round(started_in, 1),
        "start_rate_per_s": round(2 * issues / started_in, 1),  # issues and bare workflows
        "registered_in_s": round(registered_in, 1),
        "open_at_once": open_now,
        "deadlines_missed_before_all_started": missed_by_then,
        "memory": memory,
        "deadline_lateness_s": issue_p,
        "reminder_lateness_s": percentiles(reminders),
        "bare_timer_lateness_s": bare_p,
        "p99_ratio_issue_to_bare": round(issue_p["p99"] / bare_p["p99"], 2) if issue_p and bare_p.get("p99") else None,
        "server": "temporal dev server, in memory",
        "worker": f"the production worker (sandboxed workflows, a cache of {cache} workflows)",
        "note": "one process holds the worker (issues and bare workflows) and the load generator",
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--due", type=int, default=1200, help="seconds to the grid deadline")
    parser.add_argument("--cache", type=int, default=1000, help="max_cached_workflows of each worker")
    args = parser.parse_args()
    asyncio.run(main(args.issues, args.concurrency, args.due, args.cache))
