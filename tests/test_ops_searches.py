"""The searches the README gives ops (Web UI query box, `temporal workflow list --query`) find
the issues they say: overdue at a department, due on a given day (Asia/Shanghai), by street."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.jurisdiction import LevelPolicy
from tests.conftest import issue_worker
from tests.helpers import GRID_WORKER, STREET_HANDLER, act, dept, ids, listed, start, state, until, with_policies

SHANGHAI = ZoneInfo("Asia/Shanghai")
OVERDUE_AT_DEPARTMENT = 'WorkflowType="IssueWorkflow" AND IssueStage="department" AND Overdue=true'
BY_STREET = 'WorkflowType="IssueWorkflow" AND ExecutionStatus="Running" AND Street="{street}"'


def due_on(day) -> str:
    start_ = datetime.combine(day, time(0), SHANGHAI)
    return (f'WorkflowType="IssueWorkflow" AND ExecutionStatus="Running" '
            f'AND DueAt >= "{start_.isoformat()}" AND DueAt < "{(start_ + timedelta(days=1)).isoformat()}"')


async def found(client, query: str, expect: set[str], timeout: float = 15) -> set[str]:
    return ids(await listed(client, query, lambda ws: expect <= ids(ws), timeout))


async def test_the_readme_searches_find_what_they_say(dev_env, demo, pool):
    hour = "PT1H"
    j = with_policies(demo, grid=LevelPolicy(handle=hour), community=LevelPolicy(handle=hour), area=LevelPolicy(handle=hour),
                      street=LevelPolicy(handle=hour), department=LevelPolicy(accept=hour, resolve="PT2S", reminders=[]))
    async with issue_worker(dev_env.client, j, pool) as tq:
        queue = f' AND TaskQueue="{tq}"'
        at_grid = await start(dev_env.client, tq, "tree-trimming")
        late = await start(dev_env.client, tq, "tree-trimming", grid="donghua-a1-c1-g1")
        await act(late, "escalate", actor={**GRID_WORKER, "unit_id": "donghua-a1-c1-g1"}, reason="r")
        await act(late, "dispatch", actor={**STREET_HANDLER, "unit_id": "donghua"})
        await act(late, "accept", actor=dept("lvhua"))
        await until(late, lambda s: s.overdue, timeout=15)  # resolve deadline of 2 s missed

        overdue = await found(dev_env.client, OVERDUE_AT_DEPARTMENT + queue, {late.id})
        assert overdue == {late.id}
        assert await found(dev_env.client, BY_STREET.format(street="heping") + queue, {at_grid.id}) == {at_grid.id}
        assert await found(dev_env.client, BY_STREET.format(street="donghua") + queue, {late.id}) == {late.id}
        due = (await state(at_grid)).due_at.astimezone(SHANGHAI).date()
        assert at_grid.id in await found(dev_env.client, due_on(due) + queue, {at_grid.id})
        assert at_grid.id not in await found(dev_env.client, due_on(due + timedelta(days=1)) + queue, set(), timeout=0)
