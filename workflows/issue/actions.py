"""What each action does once its rule (domain/authority.py) has let it in: the body of each of
IssueWorkflow's updates, run under the workflow's lock on a registered issue. The moves that
several actions share are in moves.py, the clocks in clocks.py, what leaves the workflow in
effects.py. The workflow class keeps the Temporal surface: handlers, validators, the loop."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import authority
    from domain.deadlines import RESIDENT, DeadlineKey, set_assignment_due
    from domain.ownership import SUPERVISOR, awaiting_arbitration, ladder_unit
    from schemas.actions import (Accept, Assign, DecideExtension, Decline, Dispatch, Escalate, Feedback,
                                 RequestExtension, Resolve, Review, ReviewDecision, Urge)
    from schemas.issue import AssignmentStatus, Extension, IssueState, Outcome, Stage
    from schemas.principal import Role
    from workflows.common import deadline_at
    from workflows.issue.clocks import Clocks
    from workflows.issue.effects import Effects
    from workflows.issue.moves import Moves
    from workflows.issue.run import IssueRun


class Actions:
    def __init__(self, issue: IssueRun, effects: Effects, clocks: Clocks, moves: Moves) -> None:
        self.issue, self.effects, self.clocks, self.moves = issue, effects, clocks, moves

    async def accept(self, s: IssueState, input: Accept) -> None:
        a = authority.own_assignment(s, input.actor)
        a.status, a.accepted_at = AssignmentStatus.accepted, self.issue.now
        self.clocks.close_key(DeadlineKey.of_assignment("accept", a))
        await self.effects.transition("accepted", input.actor, a.department_id, detail={"note": input.note, "round": a.round})

    async def resolve(self, s: IssueState, input: Resolve) -> None:
        if input.actor.role == Role.department:
            a = authority.own_assignment(s, input.actor)
            a.status, a.resolved_at, a.summary = AssignmentStatus.resolved, self.issue.now, input.summary
            self.clocks.close_assignment(a)
            current = self.moves.current_assignments()
            if any(x.status != AssignmentStatus.resolved for x in current):
                await self.effects.transition("resolved", input.actor, a.department_id,
                                              detail={"summary": input.summary, "partial": True})
                return
            s.resolved_by = list(dict.fromkeys(x.department_id for x in current))
        else:
            self.clocks.close_handle()
            s.resolved_by = [ladder_unit(s, s.stage)]
        s.resolution = input.summary
        s.resolved_stage = s.stage
        await self.moves.enter_feedback("resolved", input.actor, {"summary": input.summary, "resolved_by": s.resolved_by})

    async def escalate(self, s: IssueState, input: Escalate) -> None:
        if input.urgent:
            s.urgent = True
        await self.moves.route_up("escalated", input.actor, input.reason)

    async def dispatch(self, s: IssueState, input: Dispatch) -> None:
        lead, cooperating, override = authority.dispatch_targets(s, input)
        if input.urgent:
            s.urgent = True
        await self.moves.dispatch(lead, cooperating, input.actor, {"override": override, "reason": input.reason})

    async def decline(self, s: IssueState, input: Decline) -> None:
        a = authority.own_assignment(s, input.actor)
        a.status, a.decline_reason = AssignmentStatus.declined, input.reason
        self.clocks.close_assignment(a)
        await self.effects.transition("declined", input.actor, a.department_id, Stage.arbitration, {"reason": input.reason})
        await self.effects.notify("arbitration", SUPERVISOR, f"{a.department_id} declined: {input.reason}",
                                  department=a.department_id, reason=input.reason)

    async def request_extension(self, s: IssueState, input: RequestExtension) -> None:
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

    async def decide_extension(self, s: IssueState, input: DecideExtension) -> None:
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

    async def assign(self, s: IssueState, input: Assign) -> None:
        old = s.assignment(input.department_id)
        old.status = AssignmentStatus.withdrawn
        new = await self.moves.new_assignment(input.to_department, old.role)
        stage = Stage.arbitration if awaiting_arbitration(s.assignments) else Stage.department
        await self.effects.transition(
            "assigned", input.actor, input.to_department, stage,
            {"from": input.department_id, "to": input.to_department, "reason": input.reason, "round": new.round},
        )

    async def urge(self, s: IssueState, input: Urge) -> None:
        targets = [input.unit_id] if input.unit_id else (s.owners or [s.owner_unit])
        s.urges += 1
        await self.effects.transition("urged", input.actor, targets[0], detail={"note": input.note, "units": targets})
        for unit in targets:
            await self.effects.notify("urge", unit, input.note, note=input.note)

    async def feedback(self, s: IssueState, input: Feedback) -> None:
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

    async def review(self, s: IssueState, input: Review) -> None:
        detail = {"decision": input.decision.value, "reason": input.reason}
        if input.decision == ReviewDecision.close:
            await self.moves.close(Outcome.closed_by_review, "review", input.actor, detail)
        else:
            s.resolved_by, s.resolution = [], None
            await self.moves.dispatch(input.to_department, [], input.actor, {**detail, "reassigned": True}, kind="review")
