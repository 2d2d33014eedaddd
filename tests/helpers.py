"""Small helpers for driving IssueWorkflow in tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.client import Client, WorkflowExecution, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from schemas.intake import IssueIntake
from schemas.issue import IssueEvent, IssueState, Stage
from schemas.principal import Actor
from whistle.db import queries
from schemas.jurisdiction import Jurisdiction, LevelPolicy, Policies
from schemas.league import PeriodRequest
from whistle.intake import submit_issue
from workflows.issue import IssueWorkflow
from workflows.league import LeagueTableWorkflow

T = TypeVar("T")

GRID = "heping-a1-c1-g1"
COMMUNITY = "heping-a1-c1"
AREA = "heping-a1"
STREET = "heping"


def actor(role: str, unit: str | None = None, id: str | None = None) -> dict[str, Any]:
    return {"id": id or f"{role}-1", "role": role, "unit_id": unit}


GRID_WORKER = actor("grid", GRID)
COMMUNITY_HANDLER = actor("community", COMMUNITY)
AREA_HANDLER = actor("area", AREA)
STREET_HANDLER = actor("street", STREET)
SUPERVISOR = actor("supervisor")
RESIDENT = actor("resident")


async def polled(fetch: Callable[[], Awaitable[T]], holds: Callable[[T], bool], timeout: float = 15,
                 every: float = 0.2, tolerate: tuple[type[BaseException], ...] = ()) -> T | None:
    """`fetch()` again and again until `holds` of what it gives, or `timeout` passes: what it
    gave last (None when that raised one of `tolerate`, e.g. a workflow not started yet). For
    what becomes true a moment later; the caller asserts on the result."""
    end = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            value = await fetch()
            if holds(value):
                return value
        except tolerate:
            value = None
        if asyncio.get_running_loop().time() > end:
            return value
        await asyncio.sleep(every)


async def listed(client: Client, query: str, until: Callable[[list[WorkflowExecution]], bool] = bool,
                 timeout: float = 15) -> list[WorkflowExecution]:
    """What a visibility query finds. Visibility follows the workflows by a moment (describe
    already shows what a list may not yet), so this polls until `until` holds of the list, by
    default until anything shows, or the timeout passes, and returns the last list."""

    async def found() -> list[WorkflowExecution]:
        return [w async for w in client.list_workflows(query)]

    return await polled(found, until, timeout)


async def answers(http, path: str, holds: Callable[[Any], bool], timeout: float = 15):
    """GET `path` until `holds` of the response, and that response: a health check gives each
    dependency 3 s, which a shared server on a loaded machine now and then misses."""
    return await polled(lambda: http.get(path), holds, timeout)


async def drafted(league: WorkflowHandle, timeout: float = 15):
    """The league table's state once it holds a draft for review (AssertionError if it never does)."""
    s = await polled(lambda: league.query(LeagueTableWorkflow.state), lambda s: s.stage == "draft", timeout, 0.1,
                     tolerate=(Exception,))
    if s is None or s.stage != "draft":
        raise AssertionError(f"no draft within {timeout} s (stage {getattr(s, 'stage', None)})")
    return s


def ids(executions: list[WorkflowExecution]) -> set[str]:
    return {w.id for w in executions}


def round_closing_during_check(client: Client) -> Callable:
    """A fake `rounds_closed` for a worker's `replacing=`: at its first call the period's round
    closes while the check runs (the league's evaluation_closed signal lands in its history
    before the check answers "not yet"); every later call answers "closed"."""
    calls = 0

    @activity.defn(name="rounds_closed")
    async def rounds_closed(request: PeriodRequest) -> bool:
        nonlocal calls
        calls += 1
        if calls > 1:
            return True
        await client.get_workflow_handle(f"league-{request.period}").signal("evaluation_closed", request.period)
        return False

    return rounds_closed


def dept(unit: str) -> dict[str, Any]:
    return actor("department", unit, id=f"staff-{unit}")


# The caller to ask for feedback: every channel but a unit's own patrol has one (rule book 2
# asks nobody else, domain/authority.py). Pass reporter=None for an issue without.
RESIDENT_CONTACT = {"name": "王女士", "phone": "13900000000"}


def intake(category: str = "illegal-construction", grid: str = GRID, **extra: Any) -> IssueIntake:
    channel = extra.pop("channel", "hotline")
    extra.setdefault("reporter", None if channel == "patrol" else RESIDENT_CONTACT)
    return IssueIntake(
        channel=channel,
        reference=extra.pop("reference", f"T-{uuid.uuid4().hex[:12]}"),
        category=category,
        grid_id=grid,
        description=extra.pop("description", "测试问题"),
        **extra,
    )


async def start(client: Client, task_queue: str, category: str = "illegal-construction", **extra: Any) -> WorkflowHandle:
    options = {k: extra.pop(k) for k in ("max_history_events",) if k in extra}
    handle, created, s = await submit_issue(client, intake(category, **extra), task_queue, **options)
    assert created and s is not None and s.seq >= 1  # registered when the start returns
    return handle


async def act(handle: WorkflowHandle, name: str, **payload: Any) -> IssueState:
    return await handle.execute_update(name, payload, result_type=IssueState)


async def rejected(handle: WorkflowHandle, name: str, **payload: Any) -> ApplicationError:
    """Run an update expected to be rejected; return the ApplicationError that says why."""
    try:
        await handle.execute_update(name, payload, result_type=IssueState)
    except WorkflowUpdateFailedError as err:
        assert isinstance(err.cause, ApplicationError), err.cause
        return err.cause
    raise AssertionError(f"update {name} was accepted")


async def state(handle: WorkflowHandle) -> IssueState:
    return await handle.query(IssueWorkflow.state)


async def until(handle: WorkflowHandle, predicate: Callable[[IssueState], bool], timeout: float = 20) -> IssueState:
    """Poll the state query until `predicate` holds (for deadlines of a few seconds)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    s = None
    while True:
        try:
            s = await state(handle)
            if predicate(s):
                return s
        except Exception:  # not registered yet
            if loop.time() > end:
                raise
        if loop.time() > end:
            raise AssertionError(f"condition not met within {timeout}s; stage={getattr(s, 'stage', None)}")
        await asyncio.sleep(0.1)


def with_policies(j: Jurisdiction, **levels: Any) -> Jurisdiction:
    """The jurisdiction with some policies replaced, e.g. department=LevelPolicy(accept="PT3S", ...)."""
    data = j.policies.model_dump()
    for k, v in levels.items():
        data[k] = v.model_dump() if isinstance(v, LevelPolicy) else v
    return j.model_copy(update={"policies": Policies.model_validate(data)})


async def events(pool, s: IssueState, timeout: float = 10) -> list[IssueEvent]:
    """The issue's events as the read model holds them (the workflow keeps only their count,
    `seq`), once it holds the state's last one: a timer's move is in the state a moment before
    its write has landed."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch(queries.SELECT_EVENTS, s.issue_id)
        if (rows and rows[-1]["seq"] >= s.seq) or loop.time() > end:
            break
        await asyncio.sleep(0.05)
    assert rows and rows[-1]["seq"] >= s.seq, f"the read model has not caught up with event {s.seq}"
    return [
        IssueEvent.model_construct(seq=r["seq"], at=r["at"], kind=r["kind"], stage_from=Stage(r["stage_from"]) if r["stage_from"] else None,
                   stage_to=Stage(r["stage_to"]) if r["stage_to"] else None,
                   unit_id=r["unit_id"], detail=r["detail"],
                   # The read model keeps the actor's id and role, not its unit.
                   actor=Actor.model_construct(id=r["actor_id"], role=r["actor_role"], unit_id=None) if r["actor_id"] else None)
        for r in rows if r["seq"] <= s.seq
    ]
