"""IssueWorkflow: one durable workflow per resident's issue.

grid → community → area → street → department(s), under the deadlines of the jurisdiction's
policies. The workflow orchestrates: an event loop over the issue's running clocks (a timer
wakes it for the next reminder or due time) and one update per action, which changes the state
under a lock. The rules live in domain/ (who may act: authority; what opens, closes and is
missed: deadlines; the ladder; who owns a stage: ownership); the moves several handlers share
in moves.py; the clocks in clocks.py; what a transition does outside in effects.py.

Rejections: `ApplicationError` of type "Forbidden" (this actor may not) or "NotAllowed"
(not in the current state), made by workflows/common.py; the API maps them to 403 and 409.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.issue import IssueActivities
    from domain import authority
    from domain.deadlines import RESIDENT, DeadlineKey, set_assignment_due
    from domain.ownership import SUPERVISOR, awaiting_arbitration, ladder_unit
    from schemas.actions import (Accept, Assign, DecideExtension, Decline, Dispatch, Escalate, Feedback,
                                 RequestExtension, Resolve, Review, ReviewDecision, Urge)
    from schemas.intake import Reporter
    from schemas.issue import AssignmentStatus, ContextRequest, Extension, IssueState, IssueWorkflowInput, Outcome, Stage
    from schemas.principal import Role
    from workflows.common import LOCAL, deadline_at, forbidden, not_allowed, require_workflow_id
    from workflows.issue.clocks import Clocks
    from workflows.issue.effects import Effects
    from workflows.issue.moves import Moves
    from workflows.issue.run import IssueRun
    from workflows.issue.timer import LoopTimer
    from workflows.patches import IssuePatches

Rule = Callable[[IssueState, Any], None]


@workflow.defn(name="IssueWorkflow")
class IssueWorkflow:
    @workflow.init
    def __init__(self, input: IssueWorkflowInput) -> None:
        self.input = input
        carried = input.carried.model_copy(update={"runs": input.carried.runs + 1}) if input.carried else None
        # Every patch, asked before anything else of the run: the rule of workflows/patches.py.
        self.issue = IssueRun(carried, IssuePatches.ask())
        self._lock = asyncio.Lock()
        self.timer = LoopTimer(self.issue)
        self.effects = Effects(self.issue, on_change=lambda: self.timer.poke(self._should_continue_as_new()))
        self.clocks = Clocks(self.issue)
        self.moves = Moves(self.issue, self.effects, self.clocks)

    @property
    def s(self) -> IssueState | None:
        return self.issue.s

    # ------------------------------------------------------------------------------ run loop
    @workflow.run
    async def run(self, input: IssueWorkflowInput) -> IssueState:
        if self.issue.s is None:
            await self._register(input)
        s = self.issue.state
        while s.stage != Stage.closed and not self._should_continue_as_new():
            fired = await self.timer.wait()
            async with self._lock:
                if self.issue.patches.timer_clock:
                    # What is due is decided at the fired timer's own due time. workflow.now() is
                    # not the same live and on replay in the first task after a sticky task's
                    # schedule-to-start time-out (a worker gone): live it still reads the previous
                    # task's time, on replay the right one, so the two would act on different
                    # reminders and deadlines. A handler's wake alone only moves the timer (1 ms
                    # when something is due already).
                    if fired:
                        assert self.timer.at is not None
                        self.issue.move_at_least(self.timer.at)
                        await self.moves.process_due(self.timer.at)
                else:
                    if fired:  # runs before timer-clock: the clock of the timer's task
                        self.issue.move_at_least(workflow.now())
                    await self.moves.process_due()
                await self.effects.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if s.stage != Stage.closed:
            workflow.continue_as_new(
                IssueWorkflowInput(intake=self.input.intake, carried=s, max_history_events=self.input.max_history_events)
            )
        return s

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        limit = self.input.max_history_events
        return info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() >= limit)

    async def _register(self, input: IssueWorkflowInput) -> None:
        intake = input.intake
        require_workflow_id(intake.workflow_id, " for this intake (channel, reference)")
        now = self.issue.now  # the start's own time, read before the context activity
        context = await workflow.execute_local_activity_method(
            IssueActivities.resolve_issue_context,
            ContextRequest(category=intake.category, grid_id=intake.grid_id),
            summary=f"受理: {intake.category} @ {intake.grid_id}",
            **LOCAL,
        )
        self.issue.s = IssueState.registered(intake, context, now, self.issue.patches.rulebook)
        async with self._lock:
            await self.moves.enter_ladder(Stage.grid, "intake", None, {"channel": intake.channel.value})
            await self.effects.flush()

    # ------------------------------------------------------------------------------ queries
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
    # Each update runs its rule (domain/authority.py) as its validator, and again under the lock
    # (`_acting`), since the state may have moved while the update waited for it.
    @workflow.update
    async def accept(self, input: Accept) -> IssueState:
        async with self._acting(authority.may_accept, input) as s:
            a = authority.own_assignment(s, input.actor)
            a.status, a.accepted_at = AssignmentStatus.accepted, self.issue.now
            self.clocks.close_key(DeadlineKey.of_assignment("accept", a))
            await self.effects.transition("accepted", input.actor, a.department_id, detail={"note": input.note, "round": a.round})
        return s

    @accept.validator
    def validate_accept(self, input: Accept) -> None:
        self._check(authority.may_accept, input)

    @workflow.update
    async def resolve(self, input: Resolve) -> IssueState:
        async with self._acting(authority.may_resolve, input) as s:
            if input.actor.role == Role.department:
                a = authority.own_assignment(s, input.actor)
                a.status, a.resolved_at, a.summary = AssignmentStatus.resolved, self.issue.now, input.summary
                self.clocks.close_assignment(a)
                current = self.moves.current_assignments()
                if any(x.status != AssignmentStatus.resolved for x in current):
                    await self.effects.transition("resolved", input.actor, a.department_id,
                                                  detail={"summary": input.summary, "partial": True})
                    return s
                s.resolved_by = list(dict.fromkeys(x.department_id for x in current))
            else:
                self.clocks.close_handle()
                s.resolved_by = [ladder_unit(s, s.stage)]
            s.resolution = input.summary
            s.resolved_stage = s.stage
            await self.moves.enter_feedback("resolved", input.actor, {"summary": input.summary, "resolved_by": s.resolved_by})
        return s

    @resolve.validator
    def validate_resolve(self, input: Resolve) -> None:
        self._check(authority.may_resolve, input)

    @workflow.update
    async def escalate(self, input: Escalate) -> IssueState:
        async with self._acting(authority.may_escalate, input) as s:
            if input.urgent:
                s.urgent = True
            await self.moves.route_up("escalated", input.actor, input.reason)
        return s

    @escalate.validator
    def validate_escalate(self, input: Escalate) -> None:
        self._check(authority.may_escalate, input)

    @workflow.update
    async def dispatch(self, input: Dispatch) -> IssueState:
        async with self._acting(authority.may_dispatch, input) as s:
            lead, cooperating, override = authority.dispatch_targets(s, input)
            if input.urgent:
                s.urgent = True
            await self.moves.dispatch(lead, cooperating, input.actor, {"override": override, "reason": input.reason})
        return s

    @dispatch.validator
    def validate_dispatch(self, input: Dispatch) -> None:
        self._check(authority.may_dispatch, input)

    @workflow.update
    async def decline(self, input: Decline) -> IssueState:
        async with self._acting(authority.may_decline, input) as s:
            a = authority.own_assignment(s, input.actor)
            a.status, a.decline_reason = AssignmentStatus.declined, input.reason
            self.clocks.close_assignment(a)
            await self.effects.transition("declined", input.actor, a.department_id, Stage.arbitration, {"reason": input.reason})
            await self.effects.notify("arbitration", SUPERVISOR, f"{a.department_id} declined: {input.reason}",
                                      department=a.department_id, reason=input.reason)
        return s

    @decline.validator
    def validate_decline(self, input: Decline) -> None:
        self._check(authority.may_decline, input)

    @workflow.update
    async def request_extension(self, input: RequestExtension) -> IssueState:
        async with self._acting(authority.may_request_extension, input) as s:
            a = authority.own_assignment(s, input.actor)
            a.extensions.append(Extension(deadline=input.deadline.value, extend_by=input.extend_by, reason=input.reason,
                                          requested_by=input.actor.id, requested_at=self.issue.now))
            await self.effects.transition(
                "extension_requested", input.actor, a.department_id,
                detail={"deadline": input.deadline.value, "extend_by": str(input.extend_by), "reason": input.reason},
            )
            await self.effects.notify("extension", SUPERVISOR, f"{a.department_id} asks for more time: {input.reason}",
                                      department=a.department_id, deadline_kind=input.deadline.value,
                                      extend_by=str(input.extend_by), reason=input.reason)
        return s

    @request_extension.validator
    def validate_request_extension(self, input: RequestExtension) -> None:
        self._check(authority.may_request_extension, input)

    @workflow.update
    async def decide_extension(self, input: DecideExtension) -> IssueState:
        async with self._acting(authority.may_decide_extension, input) as s:
            a = s.assignment(input.department_id)
            ext = a.pending_extension()
            ext.approved, ext.decided_by, ext.decided_at, ext.comment = input.approve, input.actor.id, self.issue.now, input.comment
            detail: dict[str, Any] = {"approved": input.approve, "comment": input.comment, "deadline": ext.deadline}
            d = self.clocks.find(DeadlineKey.of_assignment(ext.deadline, a))
            if input.approve and d is not None and d.open:
                d.due_at = await deadline_at(d.due_at, ext.extend_by, extends=True)
                set_assignment_due(a, ext.deadline, d.due_at)
                detail["due_at"] = d.due_at.isoformat()
            await self.effects.transition("extension_decided", input.actor, a.department_id, detail=detail)
            if self.issue.patches.v5:
                await self.effects.notify("extension_decided", a.department_id, f"extension {'approved' if input.approve else 'refused'}",
                                          deadline_kind=ext.deadline, approved=input.approve, comment=input.comment,
                                          due_at=d.due_at if d is not None else None)
        return s

    @decide_extension.validator
    def validate_decide_extension(self, input: DecideExtension) -> None:
        self._check(authority.may_decide_extension, input)

    @workflow.update
    async def assign(self, input: Assign) -> IssueState:
        async with self._acting(authority.may_assign, input) as s:
            old = s.assignment(input.department_id)
            old.status = AssignmentStatus.withdrawn
            new = await self.moves.new_assignment(input.to_department, old.role)
            stage = Stage.arbitration if awaiting_arbitration(s.assignments) else Stage.department
            await self.effects.transition(
                "assigned", input.actor, input.to_department, stage,
                {"from": input.department_id, "to": input.to_department, "reason": input.reason, "round": new.round},
            )
        return s

    @assign.validator
    def validate_assign(self, input: Assign) -> None:
        self._check(authority.may_assign, input)

    @workflow.update
    async def urge(self, input: Urge) -> IssueState:
        async with self._acting(authority.may_urge, input) as s:
            targets = [input.unit_id] if input.unit_id else (s.owners or [s.owner_unit])
            s.urges += 1
            await self.effects.transition("urged", input.actor, targets[0], detail={"note": input.note, "units": targets})
            for unit in targets:
                await self.effects.notify("urge", unit, input.note, note=input.note)
        return s

    @urge.validator
    def validate_urge(self, input: Urge) -> None:
        self._check(authority.may_urge, input)

    @workflow.update
    async def feedback(self, input: Feedback) -> IssueState:
        async with self._acting(authority.may_give_feedback, input) as s:
            self.clocks.close(lambda d: d.kind == "feedback")
            detail = {"satisfied": input.satisfied, "comment": input.comment}
            if input.satisfied:
                await self.moves.close(Outcome.satisfied, "feedback", input.actor, detail)
            elif s.reopens < s.context.policies.max_reopens:
                s.reopens += 1
                for unit in s.resolved_by:
                    s.reopens_by_unit[unit] = s.reopens_by_unit.get(unit, 0) + 1
                await self.effects.transition("feedback", input.actor, RESIDENT, detail=detail)
                await self.moves.back_to_resolvers(input.actor)
            else:
                await self.effects.transition("feedback", input.actor, RESIDENT, Stage.review, detail)
                await self.effects.notify("review", SUPERVISOR, f"dissatisfied after {s.reopens} reopens: review (close or reassign)",
                                          reopens=s.reopens)
        return s

    @feedback.validator
    def validate_feedback(self, input: Feedback) -> None:
        self._check(authority.may_give_feedback, input)

    @workflow.update
    async def review(self, input: Review) -> IssueState:
        async with self._acting(authority.may_review, input) as s:
            detail = {"decision": input.decision.value, "reason": input.reason}
            if input.decision == ReviewDecision.close:
                await self.moves.close(Outcome.closed_by_review, "review", input.actor, detail)
            else:
                s.resolved_by, s.resolution = [], None
                await self.moves.dispatch(input.to_department, [], input.actor, {**detail, "reassigned": True}, kind="review")
        return s

    @review.validator
    def validate_review(self, input: Review) -> None:
        self._check(authority.may_review, input)

    # ------------------------------------------------------------------------------ checks
    def _check(self, rule: Rule, input: Any) -> None:
        """Run an action's rule; a refusal becomes the update's error. While the issue is
        registering the validator lets the update in: its handler waits for the registration and
        then checks (`_acting`). Updates that a reset re-applies (docs/operations.md) reach the
        new run in its first task, before it has registered; refused there, they would be lost."""
        if self.s is None:
            return
        try:
            rule(self.s, input)
        except authority.Forbidden as e:
            raise forbidden(str(e)) from None
        except authority.NotAllowed as e:
            raise not_allowed(str(e)) from None

    def _acting(self, rule: Rule, input: Any) -> "_Acting":
        return _Acting(self, rule, input)


class _Acting:
    """`async with self._acting(rule, input) as s`: wait for registration, take the lock, and
    check the rule again, since the state may have moved while the update waited for the lock."""

    def __init__(self, wf: IssueWorkflow, rule: Rule, input: Any) -> None:
        self.wf, self.rule, self.input = wf, rule, input

    async def __aenter__(self) -> IssueState:
        arrived = workflow.now()  # the update's own task: the same live and on replay
        await workflow.wait_condition(lambda: self.wf.s is not None)
        await self.wf._lock.acquire()
        self.wf.issue.move_at_least(arrived)
        try:
            self.wf._check(self.rule, self.input)
        except BaseException:
            self.wf._lock.release()
            raise
        return self.wf.issue.state

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.wf.effects.flush()
        finally:
            self.wf._lock.release()
