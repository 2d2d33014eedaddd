"""The fault suite: N concurrent issue lifecycles over HTTP while one fault strikes, then an
audit of every issue. Nothing is lost or stuck, nothing applied twice, no workflow task fails,
every history replays, and the stack answers again within seconds of the fault's end.

    python -m bench.faults --lifecycles 200                       # every scenario, both policies
    python -m bench.faults --scenario worker-kill --policies pt --lifecycles 30 --cache 0

Scenarios (one fault each): worker-kill (SIGKILL ×3 at random moments, restarted at once),
server-kill (Temporal's dev server SIGKILLed, restarted on the same SQLite file),
postgres-down (30 s), api-kill (SIGKILL, restarted), dup-intake (50 identical intakes at once).
Policies: `wd` the demo district's working days (nothing falls due during a run), `pt` exact
durations of seconds, so reminders and missed deadlines fire while clients act.

Clients behave as real ones do: every request has a time-out; a 5xx, a time-out or a refused
connection is retried with the same body and the same Idempotency-Key. Each lifecycle reads
the issue and does what its stage asks for (a timer may have moved it), sends one `urge`, and
ends when the resident's satisfied feedback closes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import yaml

from bench.stack import Stack

RESULTS = Path(__file__).parent / "results"
SCENARIOS = ("worker-kill", "server-kill", "postgres-down", "api-kill", "dup-intake")
GRID = "heping-a1-c1-g1"
CHAIN = {"grid": f"grid-{GRID}", "community": "community-heping-a1-c1", "area": "area-heping-a1", "street": "street-heping"}
CATEGORY = "tree-trimming"  # the grid whistles; community and area pass it on; the street dispatches


@dataclass
class Figures:
    scenario: str
    policies: str
    lifecycles: int
    started: int = 0
    closed: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0  # acknowledged issues whose workflow is still running at the end
    task_failures: int = 0
    replay_failures: int = 0
    read_model_mismatches: int = 0
    plain_text_5xx: int = 0
    retried_requests: int = 0
    refusals_409: int = 0
    recovery_s: float | None = None
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return (self.lost == self.duplicated == self.stuck == self.task_failures == self.replay_failures
                == self.read_model_mismatches == self.plain_text_5xx == 0
                and self.closed == self.started
                and (self.recovery_s is None or self.recovery_s <= 30))


# ---------------------------------------------------------------------------------- clients
class Client:
    """One HTTP client for all lifecycles: retries like a real client, counts what it saw."""

    def __init__(self, base: str, keys: dict[str, str], figures: Figures):
        self.http = httpx.AsyncClient(base_url=base, timeout=10)
        self.keys, self.f = keys, figures
        self.fault_over_at: float | None = None  # set when a fault ends; cleared by the first success
        self.errors: Counter[str] = Counter()

    async def call(self, method: str, path: str, who: str | None, *, json_body=None, headers=None,
                   deadline: float = 300) -> httpx.Response:
        headers = dict(headers or {})
        if who:
            headers["X-API-Key"] = self.keys[who]
        end, pause = time.monotonic() + deadline, 0.2
        while True:
            try:
                r = await self.http.request(method, path, json=json_body, headers=headers)
                if r.status_code == 429:  # as a real client: wait as told, then again
                    self.f.retried_requests += 1
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                if r.status_code < 500:
                    return r
                self.errors[f"{r.status_code} {path.rsplit('/', 1)[-1]}: {r.text[:100]}"] += 1
                if not r.headers.get("content-type", "").startswith("application/json"):
                    self.f.plain_text_5xx += 1
                    self.f.notes.append(f"plain-text {r.status_code} on {method} {path}: {r.text[:120]}")
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                raise TimeoutError(f"{method} {path} kept failing for {deadline:.0f} s")
            self.f.retried_requests += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def act(self, issue_id: str, action: str, who: str | None, key: str, body: dict, token: str | None = None):
        headers = {"Idempotency-Key": key}
        if token:
            headers["X-Feedback-Token"] = token
        r = await self.call("POST", f"/v1/issues/{issue_id}/actions/{action}", who, json_body=body, headers=headers)
        if r.status_code == 200 and self.fault_over_at is not None:
            if self.f.recovery_s is None:
                self.f.recovery_s = round(time.monotonic() - self.fault_over_at, 2)
            self.fault_over_at = None
        elif r.status_code == 409:  # the state moved on (a timer's move, mostly): the lifecycle reads it again
            self.f.refusals_409 += 1
            self.f.notes.append(f"409 {action} on {issue_id}: {r.json().get('detail') or r.text[:120]}")
        elif r.status_code != 200:
            raise RuntimeError(f"{action} on {issue_id}: {r.status_code} {r.text[:200]}")
        return r


async def lifecycle(c: Client, reference: str, deadline: float, issues: dict[str, str]) -> tuple[str, str]:
    """Intake to closed; returns (issue id, how it ended). An acknowledged intake goes into
    `issues` at once: whatever happens to this client after, the audit reads the issue."""
    r = await c.call("POST", "/v1/issues", "hotline-12345", json_body=intake_body(reference))
    if r.status_code not in (200, 201):
        raise RuntimeError(f"intake {reference}: {r.status_code} {r.text[:200]}")
    issue_id, token = r.json()["issue_id"], r.json().get("feedback_token")
    c.f.started += 1
    issues[issue_id] = "acknowledged"
    urged, moves = False, Counter()
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        s = (await c.call("GET", f"/v1/issues/{issue_id}", "supervisor")).json()
        stage = s["stage"]
        if stage == "closed":
            return issue_id, "closed"
        step = (stage, s.get("seq", len(s.get("history", []))))
        moves[step] += 1  # each retry of a logical move keeps its Idempotency-Key
        key = f"{issue_id}:{stage}:{step[1]}"
        if not urged and stage not in ("feedback", "review"):
            await c.act(issue_id, "urge", "supervisor", f"{issue_id}:urge", {"note": "请尽快处理"})
            urged = True
        elif stage in ("grid", "community", "area"):
            await c.act(issue_id, "escalate", CHAIN[stage], key, {"reason": "需部门处理"})
        elif stage == "street":
            await c.act(issue_id, "dispatch", CHAIN["street"], key, {})
        elif stage == "department":
            for a in s["assignments"]:
                who = f"dept-{a['department_id']}"
                if a["status"] == "pending":
                    await c.act(issue_id, "accept", who, f"{key}:{who}:accept", {})
                elif a["status"] == "accepted":
                    await c.act(issue_id, "resolve", who, f"{key}:{who}:resolve", {"summary": "已修剪"})
        elif stage == "arbitration":
            for a in s["assignments"]:
                if a["status"] in ("declined", "escalated"):
                    await c.act(issue_id, "assign", "supervisor", f"{key}:assign:{a['department_id']}",
                                {"department_id": a["department_id"], "to_department": a["department_id"], "reason": "重新派遣"})
            for a in s["assignments"]:
                if a["status"] == "pending":
                    await c.act(issue_id, "accept", f"dept-{a['department_id']}", f"{key}:accept:{a['department_id']}", {})
        elif stage == "feedback":
            await c.act(issue_id, "feedback", None, f"{issue_id}:feedback", {"satisfied": True}, token=token)
        elif stage == "review":
            await c.act(issue_id, "review", "supervisor", key, {"decision": "close", "reason": "复核"})
        await asyncio.sleep(random.uniform(0.05, 0.3))
    return issue_id, "timed out"


# ---------------------------------------------------------------------------------- faults
async def inject(stack: Stack, c: Client, scenario: str, figures: Figures, span: float) -> None:
    """Strike while the lifecycles run."""
    loop = asyncio.get_running_loop()
    if scenario == "worker-kill":
        for _ in range(3):
            await asyncio.sleep(random.uniform(0.1, 0.3) * span)
            stack.kill("worker")
            await loop.run_in_executor(None, stack.restart, "worker")
            c.fault_over_at = time.monotonic()
    elif scenario == "server-kill":
        await asyncio.sleep(0.3 * span)
        stack.kill("temporal")
        await asyncio.sleep(2)
        await loop.run_in_executor(None, stack.restart, "temporal")
        c.fault_over_at = time.monotonic()
    elif scenario == "postgres-down":
        await asyncio.sleep(0.3 * span)
        await loop.run_in_executor(None, stack.stop_postgres)
        await asyncio.sleep(30)
        await loop.run_in_executor(None, stack.start_postgres)
        c.fault_over_at = time.monotonic()
    elif scenario == "api-kill":
        await asyncio.sleep(0.3 * span)
        stack.kill("api")
        await loop.run_in_executor(None, stack.restart, "api")
        c.fault_over_at = time.monotonic()


def intake_body(reference: str) -> dict:
    return {"channel": "hotline", "reference": reference, "category": CATEGORY, "grid_id": GRID,
            "description": "树枝挡住人行道", "reporter": {"phone": "13800000000"}}


async def dup_intake(c: Client, figures: Figures, reference: str) -> None:
    """50 identical intakes at once: one issue, one 201, forty-nine 200s with the same id."""
    body = intake_body(reference)
    answers = await asyncio.gather(*[c.call("POST", "/v1/issues", "hotline-12345", json_body=body) for _ in range(50)])
    codes = Counter(r.status_code for r in answers)
    ids = {r.json()["issue_id"] for r in answers if r.status_code in (200, 201)}
    if codes[201] != 1 or len(ids) != 1 or codes[201] + codes[200] != 50:
        figures.duplicated += max(codes[201] - 1, 0)
        figures.notes.append(f"50 identical intakes: {dict(codes)}, {len(ids)} issue ids")


# ---------------------------------------------------------------------------------- audit
async def audit(stack: Stack, issues: dict[str, str], figures: Figures) -> None:
    """Read every issue from Temporal and the read model, and replay its history."""
    import asyncpg
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError
    from temporalio.worker import Replayer

    from schemas.issue import IssueState
    from whistle.config import load_settings
    from whistle.temporal import connect, data_converter
    from worker import WORKFLOWS

    settings = load_settings(codec_key_file=stack.data / "codec.key")
    keyring = settings.keyring()
    client = await connect(stack.temporal_address, "default", keyring)
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=data_converter(keyring))
    conn = await asyncpg.connect(stack.database_url)
    try:
        for issue_id, ended in issues.items():
            handle = client.get_workflow_handle(f"issue-{issue_id}", result_type=IssueState)
            try:
                described = await handle.describe()
            except RPCError:
                figures.lost += 1
                figures.notes.append(f"{issue_id}: acknowledged, but Temporal has no workflow")
                continue
            history = await handle.fetch_history()
            failures = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
            failed = len(failures)
            figures.task_failures += failed
            for e in failures[:2]:
                a = e.workflow_task_failed_event_attributes
                figures.notes.append(f"{issue_id}: workflow task failed at event {e.event_id}: cause {a.cause}, "
                                     f"{a.failure.message[:300]}")
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                figures.replay_failures += 1
                figures.notes.append(f"{issue_id} does not replay: {str(result.replay_failure)[:200]}")
                # Kept for analysis (encrypted: the stack's codec key is kept beside it).
                kept = RESULTS / "faults-failing" / f"{figures.scenario}-{figures.policies}"
                kept.mkdir(parents=True, exist_ok=True)
                (kept / f"{issue_id}.json").write_text(history.to_json(), encoding="utf-8")
                (kept / "codec.key").write_text((stack.data / "codec.key").read_text(), encoding="utf-8")
            if described.status == WorkflowExecutionStatus.COMPLETED:
                figures.closed += 1
            elif described.status == WorkflowExecutionStatus.RUNNING:
                figures.stuck += 1
                figures.notes.append(f"{issue_id} still running ({ended}); workflow task failures {failed}")
            else:
                figures.lost += 1
                figures.notes.append(f"{issue_id} ended {described.status.name}")
            kinds = Counter(r["kind"] for r in await conn.fetch("SELECT kind FROM issue_events WHERE issue_id = $1", issue_id))
            if kinds["urged"] > 1 or kinds["intake"] != 1:
                figures.duplicated += 1
                figures.notes.append(f"{issue_id}: urged {kinds['urged']} times, intake {kinds['intake']} times")
            row = await conn.fetchrow("SELECT stage, seq FROM issues WHERE issue_id = $1", issue_id)
            if described.status == WorkflowExecutionStatus.COMPLETED:
                final = await handle.result()
                if row is None or (row["stage"], row["seq"]) != (final.stage.value, final.seq):
                    figures.read_model_mismatches += 1
                    figures.notes.append(f"{issue_id}: read model {dict(row) if row else None}, workflow {final.stage} seq {final.seq}")
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------- run
def jurisdiction_file(policies: str, data: Path) -> Path:
    from whistle.config import DEMO_JURISDICTION

    if policies == "wd":
        return DEMO_JURISDICTION
    doc = yaml.safe_load(DEMO_JURISDICTION.read_text(encoding="utf-8"))
    # Seconds, so that reminders and misses fire while the clients act.
    doc["policies"] = {
        "grid": {"handle": "PT6S"}, "community": {"handle": "PT6S"}, "area": {"handle": "PT6S"},
        "street": {"handle": "PT8S"}, "department": {"accept": "PT8S", "resolve": "PT15S"},
        "feedback_window": "PT20S", "supervision": "PT5S",
    }
    path = data / "jurisdiction-pt.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


async def run_scenario(scenario: str, policies: str, lifecycles: int, cache: int | None, concurrency: int) -> Figures:
    figures = Figures(scenario, policies, lifecycles)
    with tempfile.TemporaryDirectory(prefix=f"whistle-faults-{scenario}-", ignore_cleanup_errors=True) as tmp:
        data = Path(tmp)
        stack = Stack(data, jurisdiction_file(policies, data), max_cached_workflows=cache)
        await asyncio.to_thread(stack.start)
        began = time.monotonic()
        c = Client(stack.api_url, stack.keys(), figures)
        issues: dict[str, str] = {}
        try:
            run = random.randrange(1 << 30)
            if scenario == "dup-intake":  # lifecycle 0 then drives the issue the 50 intakes made
                await dup_intake(c, figures, f"F{run}-0")
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with gate:
                    issue_id, ended = await lifecycle(c, f"F{run}-{i}", 600, issues)
                    issues[issue_id] = ended

            work = asyncio.gather(*[one(i) for i in range(lifecycles)], return_exceptions=True)
            span = max(10.0, lifecycles / concurrency * 4)  # roughly how long the lifecycles take
            strike = asyncio.create_task(inject(stack, c, scenario, figures, span))
            outcomes = await work
            await strike
            for o in outcomes:
                if isinstance(o, BaseException):
                    figures.notes.append(f"a lifecycle failed: {o!r}"[:300])
            figures.wall_s = round(time.monotonic() - began, 1)
            figures.notes += [f"{n} × {e}" for e, n in c.errors.most_common(5)]
            await audit(stack, issues, figures)
        finally:
            await c.http.aclose()
            await asyncio.to_thread(stack.stop)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=SCENARIOS, action="append", help="default: all")
    ap.add_argument("--policies", choices=("wd", "pt"), action="append", help="default: both")
    ap.add_argument("--lifecycles", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--cache", type=int, default=None, help="the worker's max_cached_workflows (0: replay every task)")
    ap.add_argument("--out", type=Path, default=RESULTS / "faults.json")
    args = ap.parse_args()
    results = []
    for policies in args.policies or ["wd", "pt"]:
        for scenario in args.scenario or SCENARIOS:
            f = asyncio.run(run_scenario(scenario, policies, args.lifecycles, args.cache, args.concurrency))
            results.append(asdict(f))
            print(json.dumps({k: v for k, v in asdict(f).items() if k != "notes"}, ensure_ascii=False))
            for note in f.notes[:10]:
                print("   ", note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    bad = [r for r in results if not Figures(**r).ok()]
    print(f"{len(results) - len(bad)} of {len(results)} scenarios met the goal (0 lost, 0 duplicated, 0 stuck, "
          "0 task failures, every history replays, recovery within 30 s)")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
