"""The people of the simulated quarter, acting through the real workflows' updates: grid
workers, communities, areas, streets, departments, residents and the supervisor.

Each issue has one actor that looks at the issue's state, decides who acts next and when
(decisions are drawn once, from the issue's own random stream, and remembered), waits for that
simulated time and acts. A unit that lets a deadline pass simply does nothing: the workflow's
own timers escalate, penalise and hand the issue on, and the actor looks again afterwards.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from schemas.evaluation import EvaluationState
from schemas.intake import Channel, IssueIntake, Reporter
from schemas.issue import Assignment, AssignmentStatus, IssueState, Stage
from schemas.jurisdiction import Jurisdiction
from schemas.league import LeagueState
from whistle.intake import submit_issue
from whistle.console.simulation.clock import Clock
from whistle.console.simulation.scenario import (
    OFFICE_STEPS,
    ON_THE_SPOT,
    STEP,
    IssuePlan,
    OfficeHours,
    Scenario,
)
from workflows.evaluation import ReverseEvaluationWorkflow
from workflows.issue import IssueWorkflow
from workflows.league import LeagueTableWorkflow

SUPERVISOR = {"id": "supervisor-sim", "role": "supervisor", "unit_id": None}
RESIDENT = {"id": "resident", "role": "resident", "unit_id": None}
# Chance that a ladder level settles the issue itself, on-the-spot matters first.
SETTLES = {Stage.grid: (0.55, 0.12), Stage.community: (0.5, 0.2), Stage.area: (0.35, 0.15)}
IDLE = 0.06  # a ladder unit lets its deadline pass
TIMER_GUARD = timedelta(minutes=5)
UPDATE_TIMEOUT = 120  # seconds: a stranded workflow fails the run instead of hanging it


@dataclass(frozen=True)
class Move:
    at: datetime
    update: str | None = None  # None: look again then
    payload: dict[str, Any] = field(default_factory=dict)


def actor(role: str, unit: str) -> dict[str, Any]:
    return {"id": f"{role}-{unit}", "role": role, "unit_id": unit}


class People:
    def __init__(self, client: Client, task_queue: str, clock: Clock, office: OfficeHours, scenario: Scenario,
                 jurisdiction: Jurisdiction | None = None):
        self.client = client
        self.jurisdiction = jurisdiction  # for each issue's summary in the Web UI, as the API gives it
        self.task_queue = task_queue
        self.clock = clock
        self.office = office
        self.scenario = scenario
        self.actions: Counter[str] = Counter()
        self.closed = 0

    # ------------------------------------------------------------------------------ issues
    async def issue(self, plan: IssuePlan) -> IssueState:
        rng = random.Random(plan.seed)
        await self.clock.at(plan.arrival)
        reporter = None if plan.channel == Channel.patrol else Reporter(name="居民", phone=f"139{rng.randrange(10**8):08d}")
        intake = IssueIntake(
            channel=plan.channel, reference=plan.reference, category=plan.category, grid_id=plan.grid_id,
            description=f"模拟诉求 {plan.reference}", reporter=reporter, reported_at=plan.reported_at,
        )
        handle, _, s = await submit_issue(self.client, intake, self.task_queue, self.jurisdiction)
        self.actions["intake"] += 1
        decided: dict[tuple, Move] = {}
        while True:
            if s is None:
                s = await handle.query(IssueWorkflow.state)
            if s.stage == Stage.closed:
                self.closed += 1
                return s
            move = self._next_move(s, rng, decided, plan)
            await self.clock.at(self._clear_of_timers(s, move) if move.update else move.at)
            s = await self._act(handle, move)

    @staticmethod
    def _clear_of_timers(s: IssueState, move: Move) -> datetime:
        """The move's time, put off by a step while one of the issue's own timers falls due
        within `TIMER_GUARD` of it. The time-skipping server strands a workflow whose task
        cancels a timer that fired while the task was with the worker (temporalio/sdk-java#3088);
        an update wakes the issue's loop, which cancels its timer."""
        timers = []
        for d in s.deadlines:
            if d.open:
                timers += [d.due_at] + [d.reminder_at(f) for f in d.reminders if f not in d.reminders_sent]
        at = move.at
        while any(abs(t - at) < TIMER_GUARD for t in timers):
            at += STEP
        return at

    async def _act(self, handle: WorkflowHandle, move: Move) -> Any:
        """Run the move's update; None when there is nothing to do but look again (also when
        a deadline moved the issue on first, which the workflow reports as NotAllowed)."""
        if move.update is None:
            return None
        try:
            result = await asyncio.wait_for(
                handle.execute_update(move.update, move.payload, result_type=IssueState), UPDATE_TIMEOUT
            )
        except WorkflowUpdateFailedError as err:
            if isinstance(err.cause, ApplicationError) and err.cause.type == "NotAllowed":
                self.actions["refused"] += 1
                await self.clock.at(self.clock.now + STEP)
                return None
            raise
        self.actions[move.update] += 1
        return result

    def _next_move(self, s: IssueState, rng: random.Random, decided: dict[tuple, Move], plan: IssuePlan) -> Move:
        if s.stage in (Stage.department, Stage.arbitration):
            moves = [self._assignment_move(s, a, rng, decided) for a in s.assignments if a.cycle == s.cycle
                     and a.status not in (AssignmentStatus.withdrawn, AssignmentStatus.resolved)]
            moves = [m for m in moves if m is not None]
            return min(moves, key=lambda m: m.at) if moves else Move(self.clock.now + STEP)
        key = (s.stage, s.cycle, s.reopens, s.seq if s.stage == Stage.review else 0)
        if key not in decided:
            if s.stage == Stage.feedback:
                decided[key] = self._feedback(s, rng)
            elif s.stage == Stage.review:
                decided[key] = self._review(s, rng)
            elif s.stage == Stage.street:
                decided[key] = self._street(s, rng)
            else:
                decided[key] = self._ladder(s, rng, plan)
        move = decided[key]
        if move.at < self.clock.now:  # looked again and nothing changed yet: a little later
            return Move(self.clock.now + STEP)
        return move

    def _due(self, s: IssueState, kind: str, unit: str | None = None) -> datetime:
        due = [d.due_at for d in s.deadlines if d.open and d.kind == kind and (unit is None or d.unit_id == unit)]
        return min(due) if due else self.clock.now

    def _ladder(self, s: IssueState, rng: random.Random, plan: IssuePlan) -> Move:
        unit = s.context.chain[s.stage.value]
        if rng.random() < IDLE:
            return self._look_after(self._due(s, "handle"))
        now = self.clock.now
        by = actor(s.stage.value, unit)
        on_the_spot, otherwise = SETTLES[s.stage]
        if rng.random() < (on_the_spot if plan.category in ON_THE_SPOT else otherwise) and not s.urgent:
            at = self._before(self.office.after(now, rng.randint(1, 5)), self._due(s, "handle"))
            return Move(at, "resolve", {"actor": by, "summary": f"{s.stage.value} 已现场处置"})
        at = now if s.urgent else self._before(self.office.after(now, rng.randint(1, 3)), self._due(s, "handle"))
        return Move(at, "escalate", {"actor": by, "reason": "超出本级处置能力,吹哨上报", "urgent": s.urgent})

    def _street(self, s: IssueState, rng: random.Random) -> Move:
        if rng.random() < IDLE / 2:  # the street misses its deadline: dispatched by the mapping
            return self._look_after(self._due(s, "handle"))
        by = actor("street", s.context.chain["street"])
        at = self.clock.now if s.urgent else self._before(self.office.after(self.clock.now, rng.randint(1, 4)), self._due(s, "handle"))
        payload: dict[str, Any] = {"actor": by}
        others = [d for d in s.context.departments if d != s.context.lead_department and d not in s.context.cooperating_departments]
        if rng.random() < 0.05 and others:
            payload |= {"lead_department": rng.choice(sorted(others)), "reason": "经研判改由该部门牵头"}
        return Move(at, "dispatch", payload)

    def _assignment_move(self, s: IssueState, a: Assignment, rng: random.Random, decided: dict[tuple, Move]) -> Move | None:
        key = (a.key, a.status, len(a.extensions), a.pending_extension() is not None)
        if key in decided:
            move = decided[key]
            return move if move.at >= self.clock.now else Move(self.clock.now + STEP)
        p = self.scenario.departments[a.department_id]
        now = self.clock.now
        by = actor("department", a.department_id)
        move: Move | None
        if a.status in (AssignmentStatus.declined, AssignmentStatus.escalated):
            move = self._arbitrate(s, a, rng)
        elif a.pending_extension() is not None:
            move = Move(self.office.after(now, rng.randint(1, 4)), "decide_extension", {
                "actor": SUPERVISOR, "department_id": a.department_id, "approve": rng.random() < 0.75,
                "comment": "同意延期" if rng.random() < 0.5 else "请尽快办理"})
        elif a.status == AssignmentStatus.pending:
            if rng.random() < p.late_accept:
                move = self._look_after(a.accept_due)  # lets the report-in deadline pass
            elif rng.random() < p.decline:
                move = Move(self.office.after(now, rng.randint(1, 4)), "decline", {"actor": by, "reason": "不属于本部门职责"})
            else:
                at = now if a.urgent else self.office.after(now, rng.randint(*p.accept_hours))
                move = Move(self._before(at, a.accept_due), "accept", {"actor": by, "note": "已报到"})
        elif a.status == AssignmentStatus.accepted:
            move = self._work(a, p, rng, by)
        else:
            move = None
        if move is not None:
            decided[key] = move
        return move

    def _work(self, a: Assignment, p, rng: random.Random, by: dict[str, Any]) -> Move:
        now = self.clock.now
        due = a.resolve_due or now
        asked = len(a.extensions) > 0
        if not asked and rng.random() < p.extension:
            return Move(self._before(self.office.days_before(due, 1), due), "request_extension", {
                "actor": by, "deadline": "resolve", "extend_by": "3WD", "reason": "需协调多方,申请延期"})
        if rng.random() < p.late_resolve:
            at = self.office.after(due, rng.randint(1, 3 * OFFICE_STEPS))
        else:
            days = rng.randint(*p.resolve_days)
            at = self._before(self.office.after(now, days * OFFICE_STEPS + rng.randint(0, OFFICE_STEPS - 1)), due)
        return Move(max(at, now), "resolve", {"actor": by, "summary": "已办结"})

    def _arbitrate(self, s: IssueState, a: Assignment, rng: random.Random) -> Move:
        at = self.office.next_day(self.clock.now, rng)
        if a.status == AssignmentStatus.escalated or rng.random() < 0.5:
            to, reason = a.department_id, "驳回:属于本部门职责,请立即报到"
        else:
            candidates = [d for d in sorted(s.context.departments) if d != a.department_id and s.assignment(d) is None]
            to, reason = (rng.choice(candidates), "改派相关部门") if candidates else (a.department_id, "驳回")
        return Move(at, "assign", {"actor": SUPERVISOR, "department_id": a.department_id, "to_department": to, "reason": reason})

    def _feedback(self, s: IssueState, rng: random.Random) -> Move:
        if not s.has_reporter or rng.random() < 0.1:  # nobody answers: the window closes the issue
            return self._look_after(self._due(s, "feedback"))
        if s.resolved_stage == Stage.department:
            quality = sum(self.scenario.departments[d].quality for d in s.resolved_by) / max(len(s.resolved_by), 1)
        else:
            quality = 0.9
        satisfied = rng.random() < quality - (0.15 if s.overdue else 0.0)
        at = self._before(self.office.after(self.clock.now, rng.randint(1, 2 * OFFICE_STEPS)), self._due(s, "feedback"))
        return Move(at, "feedback", {"actor": RESIDENT, "satisfied": satisfied,
                                     "comment": "满意" if satisfied else "问题没有解决"})

    def _review(self, s: IssueState, rng: random.Random) -> Move:
        at = self.office.next_day(self.clock.now, rng)
        if rng.random() < 0.7:
            return Move(at, "review", {"actor": SUPERVISOR, "decision": "close", "reason": "经核查已按政策处理"})
        return Move(at, "review", {"actor": SUPERVISOR, "decision": "reassign", "reason": "重新交办",
                                   "to_department": s.context.lead_department})

    def _look_after(self, due: datetime) -> Move:
        """Look again once the workflow has acted on `due` (the next office hour: nobody acts
        before then)."""
        return Move(self.office.next_open(due + STEP))

    def _before(self, at: datetime, due: datetime) -> datetime:
        """`at`, or office time on the last working day before `due` when `at` would miss it."""
        if at < due:
            return at
        latest = self.office.days_before(due, 1)
        return max(latest, self.clock.now)

    # ------------------------------------------------------------------------------ quarter's end
    async def communities(self, quarter: str, opens: datetime) -> int:
        """Every community rates the units that handled its issues, at some time during the
        round; one in ten never answers. Returns the number of ratings given."""
        rng = random.Random(f"{self.scenario.seed}:ratings")
        await self.clock.at(self.office.next_open(opens))
        handle = self.client.get_workflow_handle(f"evaluation-{quarter}")
        round_ = await _query(handle, ReverseEvaluationWorkflow.state, EvaluationState)
        plans = []
        for c in sorted(round_.communities, key=lambda c: c.community_id):
            if rng.random() < 0.1:
                continue
            at = self.office.after(round_.opened_at, rng.randint(1, 7 * OFFICE_STEPS))
            plans.append((min(at, self.office.days_before(round_.closes_at, 1)), c.community_id, sorted(c.targets)))
        given = 0
        for at, community, targets in sorted(plans):
            await self.clock.at(at)
            for target in targets:
                await handle.execute_update(ReverseEvaluationWorkflow.rate, self._rating(rng, community, target))
                given += 1
        self.actions["rate"] += given
        return given

    def _rating(self, rng: random.Random, community: str, target: str) -> dict[str, Any]:
        p = self.scenario.departments.get(target)
        quality = p.quality if p else 0.8

        def score() -> int:
            return max(1, min(5, round(1 + 4 * quality + rng.gauss(0, 0.6))))

        rating = {"actor": actor("community", community), "target_id": target,
                  "responsiveness": score(), "quality": score(), "attitude": score()}
        if p is not None and rng.random() < p.pushes_down:
            rating |= {"pushed_down": True, "evidence": "将职责范围内的事项推给社区办理"}
        return rating

    async def supervisor(self, quarter: str, opens: datetime) -> LeagueState:
        """After the round closes, approves the draft red/black list, then sees it published."""
        await self.clock.at(opens)
        round_ = await _query(self.client.get_workflow_handle(f"evaluation-{quarter}"), ReverseEvaluationWorkflow.state, EvaluationState)
        handle = self.client.get_workflow_handle(f"league-{quarter}")
        await self.clock.at(round_.closes_at + STEP)
        while True:
            state = await _query(handle, LeagueTableWorkflow.state, LeagueState)
            if state.stage == "published":
                return state
            if state.stage == "draft":
                await self.clock.at(self.office.next_open(self.clock.now))
                try:
                    await handle.execute_update(LeagueTableWorkflow.review_draft, {
                        "actor": SUPERVISOR, "decision": "approve", "comments": ""})
                    self.actions["review_draft"] += 1
                except WorkflowUpdateFailedError:  # no draft awaits (it moved on): look again
                    pass
            await self.clock.at(self.clock.now + STEP)


async def _query(handle: WorkflowHandle, query, result_type):
    """The query's answer, once the workflow has started (time stands still meanwhile, so this
    waits only for the worker's first task)."""
    for _ in range(6000):
        try:
            return await handle.query(query, result_type=result_type)
        except (RPCError, WorkflowQueryFailedError):  # not started or registered yet
            await _pause()
    raise RuntimeError(f"{handle.id} did not answer")


async def _pause() -> None:
    """Between polls of a workflow that is starting (time stands still meanwhile)."""
    await asyncio.sleep(0.005)
