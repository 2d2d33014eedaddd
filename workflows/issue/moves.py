"""The moves of an issue that more than one handler, or a clock, makes: up the ladder, to
departments, to the resident and back, closed; and what falls due. Each decides by the rules of
domain/ and records itself through `Effects`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.deadlines import RESIDENT, DeadlineKey, Due, assignment_of, consequence_of_miss, first_due
    from domain.ladder import Level, duty_pass_on, next_level
    from domain.ownership import SUPERVISOR, ladder_unit
    from schemas.issue import LADDER_STAGES, Assignment, AssignmentRole, AssignmentStatus, Deadline, Outcome, Penalty, Reminder, Stage
    from schemas.principal import Actor
    from workflows.issue.clocks import Clocks
    from workflows.issue.effects import Effects
    from workflows.issue.run import IssueRun


class Moves:
    def __init__(self, issue: IssueRun, effects: Effects, clocks: Clocks) -> None:
        self.issue, self.effects, self.clocks = issue, effects, clocks

    # ------------------------------------------------------------------------------ the ladder
    async def enter_ladder(self, stage: Stage, kind: str, actor: Actor | None, detail: dict[str, Any]) -> None:
        """Hand the issue to a ladder level, then apply the duty list (domain/ladder.py)."""
        s = self.issue.state
        self.clocks.close_handle()
        level = Level(stage.value)
        unit = ladder_unit(s, stage)
        passes_on = duty_pass_on(level, s.context.duties.get(level), auto_routed=kind == "auto_escalated")
        if passes_on is None:
            await self.clocks.open_handle(level, unit)
        await self.effects.transition(kind, actor, unit, stage, detail)
        if passes_on is not None:
            await self.route_up("auto_escalated", None, f"auto-dispatch by the duty list: {passes_on}")

    async def route_up(self, kind: str, actor: Actor | None, reason: str) -> None:
        s = self.issue.state
        nxt = Stage(next_level(s.stage).value)
        await self.enter_ladder(nxt, kind, actor, {"reason": reason, "from": ladder_unit(s, s.stage)})

    # ------------------------------------------------------------------------------ departments
    async def dispatch(
        self, lead: str, cooperating: list[str], actor: Actor | None, detail: dict[str, Any], kind: str = "dispatched"
    ) -> None:
        s = self.issue.state
        self.clocks.close_handle()
        for a in s.open_assignments():
            a.status = AssignmentStatus.withdrawn
        s.cycle += 1
        await self.new_assignment(lead, "lead")
        for dep in cooperating:
            await self.new_assignment(dep, "cooperating")
        await self.effects.transition(kind, actor, lead, Stage.department, {**detail, "lead": lead, "cooperating": cooperating})
        if self.issue.patches.v5:  # each assigned department is told (runs before v5 told none)
            for a in self.current_assignments():
                await self.effects.notify("dispatch", a.department_id, f"dispatched to {a.department_id}",
                                          str(DeadlineKey.of_assignment("accept", a)),
                                          role=a.role, accept_due=a.accept_due, resolve_due=a.resolve_due)

    async def new_assignment(self, department_id: str, role: AssignmentRole, accepted: bool = False) -> Assignment:
        """An assignment with its clocks: report-in (unless `accepted`, as on a reopen) and resolve."""
        s = self.issue.state
        now = self.issue.now
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
            a.accept_due = (await self.clocks.open_assignment("accept", a)).due_at
        a.resolve_due = (await self.clocks.open_assignment("resolve", a)).due_at
        s.assignments.append(a)
        return a

    def current_assignments(self) -> list[Assignment]:
        """The assignments of the current dispatch (a dispatch, a reopen or a review starts a
        new cycle; arbitration stays in it). Issues started before this rule keep the old one:
        every assignment not withdrawn, which let a department of an earlier round count."""
        s = self.issue.state
        if self.issue.patches.current_cycle():
            return [a for a in s.assignments if a.cycle == s.cycle and a.status != AssignmentStatus.withdrawn]
        return s.live_assignments()

    # ------------------------------------------------------------------------------ the resident
    async def enter_feedback(self, kind: str, actor: Actor | None, detail: dict[str, Any]) -> None:
        s = self.issue.state
        feedback = await self.clocks.open_feedback(RESIDENT)
        await self.effects.transition(kind, actor, s.resolved_by[0] if s.resolved_by else None, Stage.feedback, detail)
        if self.issue.patches.v5 and s.has_reporter:  # the resident, through the gateway that delivered their token
            await self.effects.notify("resolved", RESIDENT, "resolved", summary=s.resolution, feedback_due=feedback.due_at)

    async def back_to_resolvers(self, actor: Actor) -> None:
        """Dissatisfied: back to the unit(s) that resolved it, counted against them."""
        s = self.issue.state
        detail = {"reopens": s.reopens, "units": s.resolved_by}
        if s.resolved_stage in LADDER_STAGES:
            stage = s.resolved_stage
            unit = ladder_unit(s, stage)
            await self.clocks.open_handle(Level(stage.value), unit)
            await self.effects.transition("reopened", actor, unit, stage, detail)
            if self.issue.patches.v5:
                await self.effects.notify("reopen", unit, "reopened", reopens=s.reopens)
        else:
            lead = next((a.department_id for a in reversed(self.current_assignments()) if a.role == "lead"), None)
            s.cycle += 1
            for dep in s.resolved_by:
                await self.new_assignment(dep, "lead" if dep == lead else "cooperating", accepted=True)
            await self.effects.transition("reopened", actor, lead, Stage.department, detail)
            if self.issue.patches.v5:
                for dep in s.resolved_by:
                    await self.effects.notify("reopen", dep, "reopened", reopens=s.reopens)
        s.resolved_by, s.resolution, s.resolved_stage = [], None, None

    async def close(self, outcome: Outcome, kind: str, actor: Actor | None, detail: dict[str, Any]) -> None:
        s = self.issue.state
        self.clocks.close_all()
        s.outcome, s.closed_at = outcome, self.issue.now
        await self.effects.transition(kind, actor, None, Stage.closed, {**detail, "outcome": outcome.value})

    # ------------------------------------------------------------------------------ what falls due
    async def process_due(self, until: datetime | None = None) -> None:
        """Send the reminders and act on the clocks due by `until` (runs before timer-clock: by
        the move's clock at each pass), earliest first, until none is due."""
        s = self.issue.state
        while s.stage != Stage.closed:
            now = until or self.issue.now
            due = first_due(s.deadlines, now)
            if due is None:
                return
            if due.fraction is not None:
                await self._remind(due, now)
            elif due.deadline.kind == "supervise":
                await self._supervise(due.deadline)
            else:
                await self._missed(due.deadline)

    async def _remind(self, due: Due, now: datetime) -> None:
        d, fraction = due.deadline, due.fraction
        assert fraction is not None
        d.reminders_sent.append(fraction)
        if d.due_at <= now:
            return  # the clock itself has run out: the miss says it all
        self.issue.state.reminders.append(Reminder(deadline_key=d.key, unit_id=d.unit_id, fraction=fraction, at=self.issue.now))
        await self.effects.transition("reminder", None, d.unit_id, detail={"deadline": d.key, "fraction": fraction, "due_at": d.due_at.isoformat()})
        await self.effects.notify("reminder", d.unit_id, f"催办: {d.kind} deadline at {d.due_at.isoformat()}", d.key,
                                  deadline_kind=d.kind, due_at=d.due_at, fraction=fraction)

    async def _missed(self, d: Deadline) -> None:
        s = self.issue.state
        d.open, d.missed = False, True
        consequence = consequence_of_miss(d, s.stage, self.issue.patches.supervises_missed_resolve)
        if consequence == "close_without_feedback":
            await self.close(Outcome.no_feedback, "feedback_window_closed", None, {"deadline": d.key})
            return
        s.overdue = True
        s.penalties.append(
            Penalty(deadline_key=d.key, unit_id=d.unit_id, kind=f"{d.kind}_overdue", due_at=d.due_at, recorded_at=self.issue.now)
        )
        await self.effects.transition("deadline_missed", None, d.unit_id, detail={"deadline": d.key, "kind": d.kind, "penalty": True})
        await self.effects.notify("overdue", SUPERVISOR, f"{d.unit_id} missed its {d.kind} deadline {d.due_at.isoformat()}", d.key,
                                  unit=d.unit_id, deadline_kind=d.kind, due_at=d.due_at)
        reason = f"{s.stage} {d.unit_id} missed its deadline"
        if consequence == "dispatch_by_mapping":
            ctx = s.context
            await self.dispatch(
                ctx.lead_department, list(ctx.cooperating_departments), None,
                {"reason": f"{reason}: dispatched by the category mapping", "override": False},
            )
        elif consequence == "escalate":
            await self.route_up("auto_escalated", None, reason)
        elif consequence == "arbitration":
            a = assignment_of(d, s.assignments)
            a.status = AssignmentStatus.escalated
            self.clocks.close_key(DeadlineKey.of_assignment("resolve", a))
            # Rule book 1 called this `escalated`, as it calls a ladder step (`stage_to` told them
            # apart); book 2 names it. An event's kind is data, not a command: no replay differs.
            kind = "report_in_missed" if s.rulebook >= 2 else "escalated"
            await self.effects.transition(
                kind, None, SUPERVISOR, Stage.arbitration,
                {"reason": f"{a.department_id} did not report in by {d.due_at.isoformat()}", "department": a.department_id},
            )
        elif consequence == "supervise":
            # The department works on under supervision: a 督办 each working day until it resolves.
            await self.clocks.open_supervision(assignment_of(d, s.assignments))
        # penalty_only (runs before v5): a missed resolve is a penalty and the overdue flag, nothing more.

    async def _supervise(self, d: Deadline) -> None:
        """督办: the resolve clock has run out and the department has not resolved. No new
        penalty (the miss was penalised once); the department and the supervisor are told, and
        the next 督办 is due a working day later."""
        d.open = False
        a = assignment_of(d, self.issue.state.assignments)
        nxt = await self.clocks.open_supervision(a)
        resolve_due = a.resolve_due.isoformat() if a.resolve_due else None
        await self.effects.transition("supervised", None, a.department_id, detail={"deadline": d.key, "resolve_due": resolve_due})
        message = f"督办: {a.department_id} has not resolved; its resolve deadline was {resolve_due or '-'}"
        for unit in (a.department_id, SUPERVISOR):
            await self.effects.notify("supervision", unit, message, d.key, department=a.department_id,
                                      resolve_due=a.resolve_due, next_due=nxt.due_at)
