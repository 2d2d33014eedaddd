"""IssueWorkflow: one durable workflow per resident's issue.

grid → community → area → street → department(s), under the deadlines of the jurisdiction's
policies. The workflow is an event loop over its running deadlines (`state.deadlines`): a timer
wakes it for the next reminder or due time; updates change the state under a lock. Every
transition appends an event, upserts the search attributes and writes the read model through
an idempotent activity.

Rejections: `ApplicationError` of type "Forbidden" (this actor may not) or "NotAllowed"
(not in the current state), made by workflows/common.py; the API maps them to 403 and 409.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.issue import IssueActivities
    from schemas.actions import (
        Accept,
        Assign,
        DecideExtension,
        Decline,
        Dispatch,
        Escalate,
        Feedback,
        RequestExtension,
        Resolve,
        Review,
        ReviewDecision,
        Urge,
    )
    from schemas.deadline import DeadlineSpec
    from schemas.intake import Reporter
    from schemas.issue import (
        LADDER_STAGES,
        Assignment,
        AssignmentStatus,
        ContextRequest,
        Deadline,
        Extension,
        IssueEvent,
        IssueState,
        IssueWorkflowInput,
        Outcome,
        Penalty,
        Reminder,
        Stage,
        TransitionRecord,
    )
    from domain.ladder import next_level
    from schemas.jurisdiction import Level
    from schemas.principal import Actor, Role
    from whistle.temporal import CATEGORY, CHANNEL, DUE_AT, ISSUE_STAGE, OVERDUE, OWNER_UNIT, STREET
    from schemas.labels import DEADLINE, EVENT, STAGE, local_time, unit_name
    from workflows.common import LOCAL as _LOCAL
    from workflows.common import RECORD as _RECORD
    from workflows.common import as_facts, deadline_at, forbidden, not_allowed, notify, notify_started, require_workflow_id
    from workflows.patches import IssuePatches

SUPERVISOR = "supervisor"
RESIDENT = "resident"
_TICK = timedelta(milliseconds=1)


def registered_only(check):
    """An update validator that lets the update in while the issue is registering: its handler
    waits for the registration and then checks it (`_Acting`). Updates that a reset re-applies
    (docs/operations.md) reach the new run in its first task, before it has registered; refused
    there, they would be lost. Outside that window, the check runs as the validator."""

    @functools.wraps(check)
    def validator(self: "IssueWorkflow", input: Any) -> None:
        if self.s is not None:
            check(self, input)

    return validator


@workflow.defn(name="IssueWorkflow")
class IssueWorkflow:
    @workflow.init
    def __init__(self, input: IssueWorkflowInput) -> None:
        self.input = input
        self.s: IssueState | None = None
        if input.carried is not None:
            self.s = input.carried.model_copy(update={"runs": input.carried.runs + 1})
        self._lock = asyncio.Lock()
        self._timer_at: datetime | None = None
        self._wake = False
        self._search_attributes: dict[str, Any] = {}
        self._writes: list[asyncio.Future[Any]] = []  # read-model writes and notifications under way
        # The time of the move being made: the moment its timer fired or its update arrived.
        # Never workflow.now() after an await of a local activity: a task that completed with
        # only the activity's marker left the continuation to the next task live, while replay
        # runs it within the first, so the clock read there differs between the two (the same
        # asymmetry as the patch markers', workflows/patches.py) and with it the deadlines, the
        # reminders due and whether a timer is started.
        self._move_at: datetime = workflow.now()
        # Every patch, asked before anything else of the run: the rule of workflows/patches.py.
        self.patches = IssuePatches.ask()

    # ------------------------------------------------------------------------------ run loop
    @workflow.run
    async def run(self, input: IssueWorkflowInput) -> IssueState:
        if self.s is None:
            await self._register(input)
        assert self.s is not None
        while self.s.stage != Stage.closed and not self._should_continue_as_new():
            self._timer_at = self._next_wakeup()
            self._wake = False
            # Always a timer when something falls due, even one already due (1 ms): whether a
            # timer is started must not hang on how late this line runs.
            timeout = self._wait_for_next()
            if self.patches.timer_clock:
                fired = await self._wait_timer_or_wake(timeout)
            else:
                fired = False
                try:
                    await workflow.wait_condition(lambda: self._wake or self.s.stage == Stage.closed, timeout=timeout,
                                                  timeout_summary=self._wakeup_summary())
                except asyncio.TimeoutError:
                    fired = True
            async with self._lock:
                if self.patches.timer_clock:
                    # What is due is decided at the fired timer's own due time. workflow.now() is
                    # not the same live and on replay in the first task after a sticky task's
                    # schedule-to-start time-out (a worker gone): live it still reads the previous
                    # task's time, on replay the right one, so the two would act on different
                    # reminders and deadlines. A handler's wake alone only moves the timer (1 ms
                    # when something is due already).
                    if fired:
                        self._move_at = max(self._move_at, self._timer_at)
                        await self._process_due(self._timer_at)
                else:
                    if fired:  # runs before timer-clock: the clock of the timer's task
                        self._move_at = max(self._move_at, workflow.now())
                    await self._process_due()
                await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self.s.stage != Stage.closed:
            workflow.continue_as_new(
                IssueWorkflowInput(intake=self.input.intake, carried=self.s, max_history_events=self.input.max_history_events)
            )
        return self.s

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        limit = self.input.max_history_events
        return info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() >= limit)

    async def _register(self, input: IssueWorkflowInput) -> None:
        intake = input.intake
        require_workflow_id(intake.workflow_id, " for this intake (channel, reference)")
        now = self._now  # the start's own time, read before the context activity
        context = await workflow.execute_local_activity_method(
            IssueActivities.resolve_issue_context,
            ContextRequest(category=intake.category, grid_id=intake.grid_id),
            summary=f"受理: {intake.category} @ {intake.grid_id}",
            **_LOCAL,
        )
        self.s = IssueState(
            issue_id=intake.issue_id,
            workflow_id=intake.workflow_id,
            channel=intake.channel.value,
            reference=intake.reference,
            category=intake.category,
            grid_id=intake.grid_id,
            description=intake.description,
            address=intake.address,
            lat=intake.lat,
            long=intake.long,
            has_reporter=intake.reporter is not None,
            urgent=intake.urgent or context.category_urgent,
            context=context,
            stage=Stage.grid,
            created_at=intake.reported_at or now,
            updated_at=now,
        )
        async with self._lock:
            await self._enter_ladder(Stage.grid, "intake", None, {"channel": intake.channel.value})
            await self._flush()

    @property
    def _now(self) -> datetime:
        """The clock of the move being made (runs before v5 read workflow.now() at each use)."""
        return self._move_at if self.patches.v5 else workflow.now()

    async def _wait_timer_or_wake(self, timeout: timedelta | None) -> bool:
        """Wait for the loop's timer or a handler's wake; whether the timer fired. The timer is a
        task of its own, so that a timer that fired in the same task as an update's wake still
        counts as fired (with wait_condition's time-out the wake won, and what fell due waited
        for another timer, while the next update could slip in before it)."""
        if timeout is None:
            await workflow.wait_condition(lambda: self._wake or self.s.stage == Stage.closed)
            return False
        timer = asyncio.ensure_future(workflow.sleep(timeout, summary=self._wakeup_summary()))
        await workflow.wait_condition(lambda: self._wake or self.s.stage == Stage.closed or timer.done())
        fired = timer.done()
        if not fired:
            timer.cancel()
        return fired

    def _wait_for_next(self) -> timedelta | None:
        """How long the loop's timer waits for the next reminder or deadline. Only its length
        may read workflow.now(): a timer fired late must not make the next one later still."""
        if self._timer_at is None:
            return None
        if self.patches.timer_clock:
            return max(self._timer_at - workflow.now(), _TICK)
        # Runs before v5 started no timer for what was due already; v5 always starts one.
        return max(self._timer_at - self._now, _TICK if self.patches.v5 else timedelta(0))

    def _wakeup_summary(self) -> str:
        """What the loop's timer waits for, as the Web UI shows it: `受理时限 lvhua 2026-11-27 24:00`."""
        open_ = self._open_deadlines()
        if not open_:
            return "等待"
        d = min(open_, key=lambda d: (d.due_at, d.key))
        return f"{DEADLINE.get(d.kind, d.kind)} {unit_name(d.unit_id)} {local_time(d.due_at)}（北京时间）"

    def _next_wakeup(self) -> datetime | None:
        times: list[datetime] = []
        for d in self._open_deadlines():
            times.append(d.due_at)
            times += [d.reminder_at(f) for f in d.reminders if f not in d.reminders_sent]
        return min(times) if times else None

    def _poke(self) -> None:
        """Wake the loop when a handler moved the next timer, or history asks for a new run."""
        if self._next_wakeup() != self._timer_at or self._should_continue_as_new():
            self._wake = True

    # ------------------------------------------------------------------------------ query
    @workflow.query
    def state(self) -> IssueState:
        if self.s is None:
            raise not_allowed("the issue is still being registered")
        return self.s

    @workflow.query
    def reporter(self) -> Reporter | None:
        """The reporter's contact: personal data, kept out of `state`; the API shows it only
        to principals who handle the issue."""
        return self.input.intake.reporter

    # ------------------------------------------------------------------------------ updates
    @workflow.update
    async def accept(self, input: Accept) -> IssueState:
        async with self._acting(self.validate_accept, input):
            a = self._own_assignment(input.actor)
            a.status, a.accepted_at = AssignmentStatus.accepted, self._now
            self._close_deadline(f"accept:{a.key}")
            await self._transition("accepted", input.actor, a.department_id, detail={"note": input.note, "round": a.round})
        return self.s

    @accept.validator
    @registered_only
    def validate_accept(self, input: Accept) -> None:
        self._require_role(input.actor, Role.department)
        self._require_stage(Stage.department, Stage.arbitration)
        a = self._own_assignment(input.actor)
        if a.status != AssignmentStatus.pending:
            raise not_allowed(f"the assignment of {a.department_id} is {a.status}, not awaiting report-in")

    @workflow.update
    async def resolve(self, input: Resolve) -> IssueState:
        async with self._acting(self.validate_resolve, input):
            s = self.s
            now = self._now
            if input.actor.role == Role.department:
                a = self._own_assignment(input.actor)
                a.status, a.resolved_at, a.summary = AssignmentStatus.resolved, now, input.summary
                self._close_assignment_deadlines(a)
                current = self._current_assignments()
                if any(x.status != AssignmentStatus.resolved for x in current):
                    await self._transition("resolved", input.actor, a.department_id, detail={"summary": input.summary, "partial": True})
                    return s
                s.resolved_by = list(dict.fromkeys(x.department_id for x in current))
            else:
                self._close_handle_deadlines()
                s.resolved_by = [self._ladder_unit(s.stage)]
            s.resolution = input.summary
            s.resolved_stage = s.stage
            await self._enter_feedback("resolved", input.actor, {"summary": input.summary, "resolved_by": s.resolved_by})
        return self.s

    @resolve.validator
    @registered_only
    def validate_resolve(self, input: Resolve) -> None:
        actor = self._require_role(input.actor, Role.grid, Role.community, Role.area, Role.street, Role.department)
        if actor.role == Role.department:
            self._require_stage(Stage.department, Stage.arbitration)
            a = self._own_assignment(actor)
            if a.status != AssignmentStatus.accepted:
                raise not_allowed(f"the assignment of {a.department_id} is {a.status}: report in (accept) before resolving")
            return
        self._require_own_ladder_stage(actor, "resolve")

    @workflow.update
    async def escalate(self, input: Escalate) -> IssueState:
        async with self._acting(self.validate_escalate, input):
            if input.urgent:
                self.s.urgent = True
            await self._route_up("escalated", input.actor, input.reason)
        return self.s

    @escalate.validator
    @registered_only
    def validate_escalate(self, input: Escalate) -> None:
        actor = self._require_role(input.actor, Role.grid, Role.community, Role.area, Role.street)
        if self.s.stage == Stage.street:
            raise not_allowed("the street blows the whistle by dispatching to departments: use dispatch")
        self._require_own_ladder_stage(actor, "escalate")

    @workflow.update
    async def dispatch(self, input: Dispatch) -> IssueState:
        async with self._acting(self.validate_dispatch, input):
            lead, cooperating, override = self._dispatch_targets(input)
            if input.urgent:
                self.s.urgent = True
            await self._dispatch(lead, cooperating, input.actor, {"override": override, "reason": input.reason})
        return self.s

    @dispatch.validator
    @registered_only
    def validate_dispatch(self, input: Dispatch) -> None:
        actor = self._require_role(input.actor, Role.street)
        self._require_stage(Stage.street)
        if actor.unit_id != self._ladder_unit(Stage.street):
            raise forbidden(f"the issue is with street {self._ladder_unit(Stage.street)}, not {actor.unit_id}")
        self._dispatch_targets(input)

    @workflow.update
    async def decline(self, input: Decline) -> IssueState:
        async with self._acting(self.validate_decline, input):
            a = self._own_assignment(input.actor)
            a.status, a.decline_reason = AssignmentStatus.declined, input.reason
            self._close_assignment_deadlines(a)
            await self._transition("declined", input.actor, a.department_id, Stage.arbitration, {"reason": input.reason})
            await self._notify("arbitration", SUPERVISOR, f"{a.department_id} declined: {input.reason}",
                               department=a.department_id, reason=input.reason)
        return self.s

    @decline.validator
    @registered_only
    def validate_decline(self, input: Decline) -> None:
        self._require_role(input.actor, Role.department)
        self._require_stage(Stage.department, Stage.arbitration)
        a = self._own_assignment(input.actor)
        if a.status not in (AssignmentStatus.pending, AssignmentStatus.accepted):
            raise not_allowed(f"the assignment of {a.department_id} is {a.status}; only an open assignment can be declined")

    @workflow.update
    async def request_extension(self, input: RequestExtension) -> IssueState:
        async with self._acting(self.validate_request_extension, input):
            a = self._own_assignment(input.actor)
            a.extensions.append(
                Extension(
                    deadline=input.deadline.value,
                    extend_by=input.extend_by,
                    reason=input.reason,
                    requested_by=input.actor.id,
                    requested_at=self._now,
                )
            )
            await self._transition(
                "extension_requested", input.actor, a.department_id,
                detail={"deadline": input.deadline.value, "extend_by": str(input.extend_by), "reason": input.reason},
            )
            await self._notify("extension", SUPERVISOR, f"{a.department_id} asks for more time: {input.reason}",
                               department=a.department_id, deadline_kind=input.deadline.value,
                               extend_by=str(input.extend_by), reason=input.reason)
        return self.s

    @request_extension.validator
    @registered_only
    def validate_request_extension(self, input: RequestExtension) -> None:
        self._require_role(input.actor, Role.department)
        self._require_stage(Stage.department, Stage.arbitration)
        a = self._own_assignment(input.actor)
        if a.pending_extension() is not None:
            raise not_allowed("an extension request of this assignment is already awaiting the supervisor")
        d = self._deadline(f"{input.deadline.value}:{a.key}")
        if d is None or not d.open:
            raise not_allowed(f"the {input.deadline.value} deadline of {a.department_id} is not running")

    @workflow.update
    async def decide_extension(self, input: DecideExtension) -> IssueState:
        async with self._acting(self.validate_decide_extension, input):
            a = self.s.assignment(input.department_id)
            ext = a.pending_extension()
            ext.approved, ext.decided_by, ext.decided_at, ext.comment = input.approve, input.actor.id, self._now, input.comment
            detail: dict[str, Any] = {"approved": input.approve, "comment": input.comment, "deadline": ext.deadline}
            d = self._deadline(f"{ext.deadline}:{a.key}")
            if input.approve and d is not None and d.open:
                d.due_at = await deadline_at(d.due_at, ext.extend_by, extends=True)
                setattr(a, f"{ext.deadline}_due", d.due_at)
                detail["due_at"] = d.due_at.isoformat()
            await self._transition("extension_decided", input.actor, a.department_id, detail=detail)
            if self.patches.v5:
                await self._notify("extension_decided", a.department_id, f"extension {'approved' if input.approve else 'refused'}",
                                   deadline_kind=ext.deadline, approved=input.approve, comment=input.comment,
                                   due_at=d.due_at if d is not None else None)
        return self.s

    @decide_extension.validator
    @registered_only
    def validate_decide_extension(self, input: DecideExtension) -> None:
        self._require_role(input.actor, Role.supervisor)
        self._require_stage(Stage.department, Stage.arbitration)
        a = self.s.assignment(input.department_id)
        if a is None or a.pending_extension() is None:
            raise not_allowed(f"no extension request of {input.department_id} awaits a decision")

    @workflow.update
    async def assign(self, input: Assign) -> IssueState:
        async with self._acting(self.validate_assign, input):
            old = self.s.assignment(input.department_id)
            old.status = AssignmentStatus.withdrawn
            new = await self._new_assignment(input.to_department, old.role)
            stage = Stage.arbitration if self._awaiting_arbitration() else Stage.department
            await self._transition(
                "assigned", input.actor, input.to_department, stage,
                {"from": input.department_id, "to": input.to_department, "reason": input.reason, "round": new.round},
            )
        return self.s

    @assign.validator
    @registered_only
    def validate_assign(self, input: Assign) -> None:
        self._require_role(input.actor, Role.supervisor)
        self._require_stage(Stage.department, Stage.arbitration)
        a = self.s.assignment(input.department_id)
        if a is None or a.status not in (AssignmentStatus.declined, AssignmentStatus.escalated):
            raise not_allowed(f"no assignment of {input.department_id} awaits arbitration")
        self._require_department(input.to_department)
        other = self.s.assignment(input.to_department)
        if input.to_department != input.department_id and other is not None and other.status != AssignmentStatus.resolved:
            raise not_allowed(f"{input.to_department} already has an open assignment on this issue")

    @workflow.update
    async def urge(self, input: Urge) -> IssueState:
        async with self._acting(self.validate_urge, input):
            targets = [input.unit_id] if input.unit_id else (self.s.owners or [self.s.owner_unit])
            self.s.urges += 1
            await self._transition("urged", input.actor, targets[0], detail={"note": input.note, "units": targets})
            for unit in targets:
                await self._notify("urge", unit, input.note, note=input.note)
        return self.s

    @urge.validator
    @registered_only
    def validate_urge(self, input: Urge) -> None:
        self._require_role(input.actor, Role.supervisor)
        self._require_stage(*LADDER_STAGES, Stage.department, Stage.arbitration)

    @workflow.update
    async def feedback(self, input: Feedback) -> IssueState:
        async with self._acting(self.validate_feedback, input):
            s = self.s
            self._close_deadlines(lambda d: d.kind == "feedback")
            detail = {"satisfied": input.satisfied, "comment": input.comment}
            if input.satisfied:
                await self._close(Outcome.satisfied, "feedback", input.actor, detail)
            elif s.reopens < s.context.policies.max_reopens:
                s.reopens += 1
                for unit in s.resolved_by:
                    s.reopens_by_unit[unit] = s.reopens_by_unit.get(unit, 0) + 1
                await self._transition("feedback", input.actor, RESIDENT, detail=detail)
                await self._back_to_resolvers(input.actor)
            else:
                await self._transition("feedback", input.actor, RESIDENT, Stage.review, detail)
                await self._notify("review", SUPERVISOR, f"dissatisfied after {s.reopens} reopens: review (close or reassign)",
                                   reopens=s.reopens)
        return self.s

    @feedback.validator
    @registered_only
    def validate_feedback(self, input: Feedback) -> None:
        self._require_role(input.actor, Role.resident)
        self._require_stage(Stage.feedback)

    @workflow.update
    async def review(self, input: Review) -> IssueState:
        async with self._acting(self.validate_review, input):
            detail = {"decision": input.decision.value, "reason": input.reason}
            if input.decision == ReviewDecision.close:
                await self._close(Outcome.closed_by_review, "review", input.actor, detail)
            else:
                self.s.resolved_by, self.s.resolution = [], None
                await self._dispatch(input.to_department, [], input.actor, {**detail, "reassigned": True}, kind="review")
        return self.s

    @review.validator
    @registered_only
    def validate_review(self, input: Review) -> None:
        self._require_role(input.actor, Role.supervisor)
        self._require_stage(Stage.review)
        if input.to_department is not None:
            self._require_department(input.to_department)

    # ------------------------------------------------------------------------------ checks
    def _acting(self, validator, input) -> "_Acting":
        return _Acting(self, validator, input)

    def _require_role(self, actor: Actor, *roles: Role) -> Actor:
        if actor.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise forbidden(f"role {actor.role} may not do this; allowed: {allowed}")
        return actor

    def _require_stage(self, *stages: Stage) -> None:
        if self.s.stage not in stages:
            allowed = ", ".join(s.value for s in stages)
            raise not_allowed(f"the issue is at stage {self.s.stage}; this needs stage {allowed}")

    def _require_own_ladder_stage(self, actor: Actor, action: str) -> None:
        stage = Stage(actor.role.value)
        if self.s.stage != stage:
            raise not_allowed(f"the issue is at stage {self.s.stage}; a {actor.role} can {action} it only at stage {stage}")
        unit = self._ladder_unit(stage)
        if actor.unit_id != unit:
            raise forbidden(f"the issue is with {stage} {unit}, not {actor.unit_id}")

    def _require_department(self, department_id: str) -> None:
        if department_id not in self.s.context.departments:
            raise not_allowed(f"unknown department {department_id!r}")

    def _own_assignment(self, actor: Actor) -> Assignment:
        a = self.s.assignment(actor.unit_id or "")
        if a is None:
            raise forbidden(f"department {actor.unit_id} has no assignment on this issue")
        return a

    def _dispatch_targets(self, input: Dispatch) -> tuple[str, list[str], bool]:
        ctx = self.s.context
        lead = input.lead_department or ctx.lead_department
        if input.cooperating_departments is not None:
            cooperating = list(input.cooperating_departments)
        else:
            cooperating = list(ctx.cooperating_departments) if lead == ctx.lead_department else []
        for dep in [lead, *cooperating]:
            self._require_department(dep)
        if lead in cooperating or len(set(cooperating)) != len(cooperating):
            raise not_allowed("each department may appear once, and the lead not among the cooperating")
        override = lead != ctx.lead_department or sorted(cooperating) != sorted(ctx.cooperating_departments)
        if override and not (input.reason and input.reason.strip()):
            raise not_allowed(
                f"this overrides the category's mapping (lead {ctx.lead_department}, "
                f"cooperating {ctx.cooperating_departments}); give a reason"
            )
        return lead, cooperating, override

    def _current_assignments(self) -> list[Assignment]:
        """The assignments of the current dispatch (a dispatch, a reopen or a review starts a
        new cycle; arbitration stays in it). Issues started before this rule keep the old one:
        every assignment not withdrawn, which let a department of an earlier round count."""
        if self.patches.current_cycle():
            s = self.s
            return [a for a in s.assignments if a.cycle == s.cycle and a.status != AssignmentStatus.withdrawn]
        return self.s.live_assignments()

    def _awaiting_arbitration(self) -> bool:
        return any(a.status in (AssignmentStatus.declined, AssignmentStatus.escalated) for a in self.s.assignments)

    # ------------------------------------------------------------------------------ moves
    def _ladder_unit(self, stage: Stage) -> str:
        return self.s.context.chain[Level(stage.value)]

    async def _enter_ladder(self, stage: Stage, kind: str, actor: Actor | None, detail: dict[str, Any]) -> None:
        """Hand the issue to a ladder level, then apply the duty lists: the community's
        assessment passes on what is not its statutory duty; so does the area, for what reaches
        it by that automatic routing (a community's own whistle asks the area to coordinate)."""
        s = self.s
        self._close_handle_deadlines()
        level = Level(stage.value)
        unit = self._ladder_unit(stage)
        duty = s.context.duties.get(level)
        assessed = stage == Stage.community or (stage == Stage.area and kind == "auto_escalated")
        passes_on = assessed and duty != "statutory"
        if not passes_on:
            policy = s.context.policies.for_level(level)
            await self._open_deadline("handle", unit, policy.handle, policy.reminders)
        await self._transition(kind, actor, unit, stage, detail)
        if passes_on:
            reason = {
                "negative": f"on the {level} negative list: must not be pushed down",
                "assistance": f"an assistance item for the {level}: a department leads",
            }.get(duty or "", f"not on the {level} duty list")
            await self._route_up("auto_escalated", None, f"auto-dispatch by the duty list: {reason}")

    async def _route_up(self, kind: str, actor: Actor | None, reason: str) -> None:
        s = self.s
        nxt = Stage(next_level(s.stage).value)
        await self._enter_ladder(nxt, kind, actor, {"reason": reason, "from": self._ladder_unit(s.stage)})

    async def _dispatch(
        self, lead: str, cooperating: list[str], actor: Actor | None, detail: dict[str, Any], kind: str = "dispatched"
    ) -> None:
        self._close_handle_deadlines()
        for a in self.s.open_assignments():
            a.status = AssignmentStatus.withdrawn
        self.s.cycle += 1
        await self._new_assignment(lead, "lead")
        for dep in cooperating:
            await self._new_assignment(dep, "cooperating")
        await self._transition(kind, actor, lead, Stage.department, {**detail, "lead": lead, "cooperating": cooperating})
        if self.patches.v5:  # each assigned department is told (runs before v5 told none)
            for a in self._current_assignments():
                await self._notify("dispatch", a.department_id, f"dispatched to {a.department_id}", f"accept:{a.key}",
                                   role=a.role, accept_due=a.accept_due, resolve_due=a.resolve_due)

    async def _new_assignment(self, department_id: str, role: str, accepted: bool = False) -> Assignment:
        s = self.s
        now = self._now
        policy = s.context.policies.department
        rounds = [a.round for a in s.assignments if a.department_id == department_id]
        a = Assignment(
            department_id=department_id,
            role=role,
            round=max(rounds, default=0) + 1,
            cycle=s.cycle,
            status=AssignmentStatus.accepted if accepted else AssignmentStatus.pending,
            assigned_at=now,
            accepted_at=now if accepted else None,
            urgent=s.urgent,
        )
        if not accepted:
            spec = s.context.policies.urgent_accept if s.urgent else policy.accept
            a.accept_due = (await self._open_deadline("accept", department_id, spec, policy.reminders, a.key)).due_at
        a.resolve_due = (await self._open_deadline("resolve", department_id, policy.resolve, policy.reminders, a.key)).due_at
        s.assignments.append(a)
        return a

    async def _enter_feedback(self, kind: str, actor: Actor | None, detail: dict[str, Any]) -> None:
        window = self.s.context.policies.feedback_window
        feedback = await self._open_deadline("feedback", RESIDENT, window, [])
        await self._transition(kind, actor, self.s.resolved_by[0] if self.s.resolved_by else None, Stage.feedback, detail)
        if self.patches.v5 and self.s.has_reporter:  # the resident, through the gateway that delivered their token
            await self._notify("resolved", RESIDENT, "resolved", summary=self.s.resolution,
                               feedback_due=feedback.due_at)

    async def _back_to_resolvers(self, actor: Actor) -> None:
        """Dissatisfied: back to the unit(s) that resolved it, counted against them."""
        s = self.s
        detail = {"reopens": s.reopens, "units": s.resolved_by}
        if s.resolved_stage in LADDER_STAGES:
            stage = s.resolved_stage
            policy = s.context.policies.for_level(Level(stage.value))
            await self._open_deadline("handle", self._ladder_unit(stage), policy.handle, policy.reminders)
            await self._transition("reopened", actor, self._ladder_unit(stage), stage, detail)
            if self.patches.v5:
                await self._notify("reopen", self._ladder_unit(stage), "reopened", reopens=s.reopens)
        else:
            lead = next((a.department_id for a in reversed(self._current_assignments()) if a.role == "lead"), None)
            s.cycle += 1
            for dep in s.resolved_by:
                await self._new_assignment(dep, "lead" if dep == lead else "cooperating", accepted=True)
            await self._transition("reopened", actor, lead, Stage.department, detail)
            if self.patches.v5:
                for dep in s.resolved_by:
                    await self._notify("reopen", dep, "reopened", reopens=s.reopens)
        s.resolved_by, s.resolution, s.resolved_stage = [], None, None

    async def _close(self, outcome: Outcome, kind: str, actor: Actor | None, detail: dict[str, Any]) -> None:
        s = self.s
        self._close_deadlines(lambda d: True)
        s.outcome, s.closed_at = outcome, self._now
        await self._transition(kind, actor, None, Stage.closed, {**detail, "outcome": outcome.value})

    # ------------------------------------------------------------------------------ deadlines
    async def _open_deadline(
        self, kind: str, unit_id: str, spec: DeadlineSpec, reminders: list[float], key: str | None = None
    ) -> Deadline:
        now = self._now
        d = Deadline(
            key=f"{kind}:{key}" if key else f"{kind}:{unit_id}:{len(self.s.deadlines) + 1}",
            kind=kind,
            unit_id=unit_id,
            started_at=now,
            due_at=await deadline_at(now, spec, what=DEADLINE.get(kind, kind)),
            reminders=sorted(reminders),
        )
        self.s.deadlines.append(d)
        return d

    def _deadline(self, key: str) -> Deadline | None:
        return next((d for d in self.s.deadlines if d.key == key), None)

    def _open_deadlines(self) -> list[Deadline]:
        return [d for d in self.s.deadlines if d.open] if self.s else []

    def _close_deadline(self, key: str) -> None:
        self._close_deadlines(lambda d: d.key == key)

    def _close_assignment_deadlines(self, a: Assignment) -> None:
        """Its report-in, resolve and 督办 clocks (keys `accept:<a.key>`, `resolve:<a.key>`,
        `supervise:<a.key>:<n>`)."""
        own = {f"accept:{a.key}", f"resolve:{a.key}"}
        self._close_deadlines(lambda d: d.key in own or d.key.startswith(f"supervise:{a.key}:"))

    def _close_handle_deadlines(self) -> None:
        self._close_deadlines(lambda d: d.kind == "handle")

    def _close_deadlines(self, predicate) -> None:
        for d in self.s.deadlines:
            if d.open and predicate(d):
                d.open = False

    async def _process_due(self, until: datetime | None = None) -> None:
        """Send the reminders and act on the deadlines due by `until` (runs before timer-clock:
        by the move's clock at each pass), earliest first, until none is due."""
        while self.s.stage != Stage.closed:
            now = until or self._now
            due = sorted(
                [(d.due_at, 1, d, None) for d in self._open_deadlines() if d.due_at <= now]
                + [
                    (d.reminder_at(f), 0, d, f)
                    for d in self._open_deadlines()
                    for f in d.reminders
                    if f not in d.reminders_sent and d.reminder_at(f) <= now
                ],
                key=lambda t: (t[0], t[1], t[2].key),
            )
            if not due:
                return
            at, _, d, fraction = due[0]
            if fraction is not None:
                await self._remind(d, fraction, now)
            elif d.kind == "supervise":
                await self._supervise(d)
            else:
                await self._missed(d)

    async def _remind(self, d: Deadline, fraction: float, now: datetime) -> None:
        d.reminders_sent.append(fraction)
        if d.due_at <= now:
            return  # the deadline itself has passed: the miss says it all
        self.s.reminders.append(Reminder(deadline_key=d.key, unit_id=d.unit_id, fraction=fraction, at=self._now))
        await self._transition("reminder", None, d.unit_id, detail={"deadline": d.key, "fraction": fraction, "due_at": d.due_at.isoformat()})
        await self._notify("reminder", d.unit_id, f"催办: {d.kind} deadline at {d.due_at.isoformat()}", d.key,
                           deadline_kind=d.kind, due_at=d.due_at, fraction=fraction)

    async def _missed(self, d: Deadline) -> None:
        s = self.s
        d.open, d.missed = False, True
        if d.kind == "feedback":
            await self._close(Outcome.no_feedback, "feedback_window_closed", None, {"deadline": d.key})
            return
        s.overdue = True
        s.penalties.append(
            Penalty(deadline_key=d.key, unit_id=d.unit_id, kind=f"{d.kind}_overdue", due_at=d.due_at, recorded_at=self._now)
        )
        await self._transition("deadline_missed", None, d.unit_id, detail={"deadline": d.key, "kind": d.kind, "penalty": True})
        await self._notify("overdue", SUPERVISOR, f"{d.unit_id} missed its {d.kind} deadline {d.due_at.isoformat()}", d.key,
                           unit=d.unit_id, deadline_kind=d.kind, due_at=d.due_at)
        if d.kind == "handle":
            reason = f"{s.stage} {d.unit_id} missed its deadline"
            if s.stage == Stage.street:
                ctx = s.context
                await self._dispatch(
                    ctx.lead_department, list(ctx.cooperating_departments), None,
                    {"reason": f"{reason}: dispatched by the category mapping", "override": False},
                )
            else:
                await self._route_up("auto_escalated", None, reason)
        elif d.kind == "accept":
            a = next(a for a in s.assignments if f"accept:{a.key}" == d.key)
            a.status = AssignmentStatus.escalated
            self._close_deadline(f"resolve:{a.key}")
            await self._transition(
                "escalated", None, SUPERVISOR, Stage.arbitration,
                {"reason": f"{a.department_id} did not report in by {d.due_at.isoformat()}", "department": a.department_id},
            )
        elif d.kind == "resolve" and self.patches.supervises_missed_resolve:
            # The department works on under supervision: a 督办 each working day until it resolves.
            await self._open_supervision(next(a for a in s.assignments if f"resolve:{a.key}" == d.key))
        # (Runs before v5: a missed resolve deadline is a penalty and the overdue flag, nothing more.)

    async def _open_supervision(self, a: Assignment) -> Deadline:
        n = 1 + sum(1 for d in self.s.deadlines if d.kind == "supervise" and d.key.startswith(f"supervise:{a.key}:"))
        return await self._open_deadline("supervise", a.department_id, self.s.context.policies.supervision, [], f"{a.key}:{n}")

    async def _supervise(self, d: Deadline) -> None:
        """督办: the resolve deadline has passed and the department has not resolved. No new
        penalty (the miss was penalised once); the department and the supervisor are told, and
        the next 督办 is due a working day later."""
        d.open = False
        a = next(a for a in self.s.assignments if d.key.startswith(f"supervise:{a.key}:"))
        nxt = await self._open_supervision(a)
        await self._transition("supervised", None, a.department_id,
                               detail={"deadline": d.key, "resolve_due": a.resolve_due.isoformat() if a.resolve_due else None})
        message = f"督办: {a.department_id} has not resolved; its resolve deadline was {a.resolve_due.isoformat() if a.resolve_due else '-'}"
        for unit in (a.department_id, SUPERVISOR):
            await self._notify("supervision", unit, message, d.key, department=a.department_id,
                               resolve_due=a.resolve_due, next_due=nxt.due_at)

    # ------------------------------------------------------------------------------ effects
    def _derive(self) -> None:
        """Owner(s) and the earliest due time, from stage and deadlines."""
        s = self.s
        if s.stage in LADDER_STAGES:
            s.owners = [self._ladder_unit(s.stage)]
        elif s.stage in (Stage.department, Stage.arbitration):
            open_ = [a for a in s.open_assignments() if a.status in (AssignmentStatus.pending, AssignmentStatus.accepted)]
            s.owners = ([SUPERVISOR] if s.stage == Stage.arbitration else []) + [a.department_id for a in open_]
        elif s.stage == Stage.feedback:
            s.owners = [RESIDENT]
        elif s.stage == Stage.review:
            s.owners = [SUPERVISOR]
        else:
            s.owners = []
        s.owner_unit = s.owners[0] if s.owners else None
        dues = [d.due_at for d in self._open_deadlines()]
        s.due_at = min(dues) if dues else None

    async def _transition(
        self,
        kind: str,
        actor: Actor | None,
        unit_id: str | None,
        stage_to: Stage | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        s = self.s
        now = self._now
        stage_from = s.stage
        if stage_to is not None:
            s.stage = stage_to
        s.updated_at = now
        self._derive()
        event = IssueEvent(
            seq=s.seq + 1, at=now, kind=kind, stage_from=stage_from, stage_to=s.stage,
            unit_id=unit_id, actor=actor, detail=detail or {},
        )
        s.history.append(event)
        self._upsert_search_attributes()
        self._poke()
        record = TransitionRecord(event=event, state=s.model_copy(update={"history": []}, deep=True))
        workflow.set_current_details(self._current_details())  # the Web UI's "current details"; no command
        summary = f"记录: {EVENT.get(kind, kind)} → {STAGE.get(s.stage.value, s.stage.value)}"
        if self._local_writes():
            self._writes.append(workflow.start_local_activity_method(
                IssueActivities.record_transition, record, summary=summary, **_RECORD))
        elif self._concurrent_writes():
            self._writes.append(workflow.start_activity_method(IssueActivities.record_transition, record, **_RECORD))
        else:
            await workflow.execute_activity_method(IssueActivities.record_transition, record, **_RECORD)

    def _local_writes(self) -> bool:
        """A move's read-model writes and notifications run as local activities, inside the
        workflow task that makes the move: an update returns after one task, not after a task,
        the activities' round trips through the server and a second task. A write of a task that
        then fails may land without being in history; the task's retry writes the same seq
        again and the read model keeps the later write. Older runs ran them as activities."""
        return self.patches.local_writes()

    def _concurrent_writes(self) -> bool:
        """(Older runs) a move's writes run at once, awaited together by `_flush`."""
        return self.patches.concurrent_writes()

    async def _flush(self) -> None:
        """Wait for the writes and notifications of the move: its update returns, or the
        workflow sleeps, only once the read model shows it."""
        while self._writes:
            writes, self._writes = self._writes, []
            await asyncio.gather(*writes)

    def _current_details(self) -> str:
        """Stage, owner and next deadline, in the district's words and time (Markdown)."""
        s = self.s
        lines = [f"**阶段** {STAGE.get(s.stage.value, s.stage.value)}",
                 f"**承办** {'、'.join(unit_name(u) for u in s.owners) or '—'}",
                 f"**时限** {local_time(s.due_at)}（北京时间）{' · **已超时**' if s.overdue else ''}"]
        if s.outcome is not None:
            lines.append(f"**结果** {s.outcome.value}")
        return "\n\n".join(lines)

    def _upsert_search_attributes(self) -> None:
        s = self.s
        wanted: dict[str, Any] = {
            ISSUE_STAGE.name: s.stage.value,
            OWNER_UNIT.name: s.owner_unit,
            STREET.name: s.context.chain.get(Level.street),
            CATEGORY.name: s.category,
            CHANNEL.name: s.channel,
            OVERDUE.name: s.overdue,
            DUE_AT.name: s.due_at,
        }
        keys = {k.name: k for k in (ISSUE_STAGE, OWNER_UNIT, STREET, CATEGORY, CHANNEL, OVERDUE, DUE_AT)}
        updates = []
        for name, value in wanted.items():
            if name in self._search_attributes and self._search_attributes[name] == value:
                continue
            self._search_attributes[name] = value
            updates.append(keys[name].value_unset() if value is None else keys[name].value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)

    async def _notify(self, kind: str, unit_id: str, message: str, deadline_key: str | None = None, **facts: Any) -> None:
        facts = as_facts(facts)
        facts.setdefault("category", self.s.category)
        if self._local_writes():
            self._writes.append(
                notify_started(kind, self.s.issue_id, unit_id, message, deadline_key, local=True, seq=self.s.seq, facts=facts)
            )
        elif self._concurrent_writes():
            self._writes.append(notify_started(kind, self.s.issue_id, unit_id, message, deadline_key))
        else:
            await notify(kind, self.s.issue_id, unit_id, message, deadline_key)


class _Acting:
    """`async with self._acting(validator, input)`: wait for registration, take the lock, and
    validate again, since the state may have moved while the update waited for the lock."""

    def __init__(self, wf: IssueWorkflow, validator, input) -> None:
        self.wf, self.validator, self.input = wf, validator, input

    async def __aenter__(self) -> None:
        arrived = workflow.now()  # the update's own task: the same live and on replay
        await workflow.wait_condition(lambda: self.wf.s is not None)
        await self.wf._lock.acquire()
        self.wf._move_at = max(self.wf._move_at, arrived)
        try:
            self.validator(self.input)
        except BaseException:
            self.wf._lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.wf._flush()
        finally:
            self.wf._lock.release()
