"""Issue states built in memory, for the pure rules' tests (domain/): no server, no workflow."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from domain.ladder import Level
from schemas.issue import Assignment, AssignmentStatus, Deadline, IssueContext, IssueState, Stage
from schemas.jurisdiction import Policies

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)
CHAIN = {Level.grid: "g1", Level.community: "c1", Level.area: "a1", Level.street: "s1"}


def context(**changes) -> IssueContext:
    return IssueContext(
        chain=CHAIN, lead_department="housing", cooperating_departments=["water"],
        departments=["housing", "water", "parks"], policies=Policies(), **changes,
    )


def assignment(department_id: str = "housing", status: AssignmentStatus = AssignmentStatus.pending, round: int = 1,
               cycle: int = 1, role: str = "lead") -> Assignment:
    return Assignment(department_id=department_id, role=role, round=round, cycle=cycle, status=status, assigned_at=T0)


def deadline(key: str, due_in: timedelta = timedelta(hours=10), started: datetime = T0, reminders=(0.5,), **changes) -> Deadline:
    return Deadline(key=key, kind=key.split(":")[0], unit_id=key.split(":")[1], started_at=started,
                    due_at=started + due_in, reminders=list(reminders), **changes)


def state(stage: Stage = Stage.grid, assignments: list[Assignment] = (), deadlines: list[Deadline] = (), **changes) -> IssueState:
    fields = dict(
        issue_id="I1", workflow_id="issue-I1", channel="hotline", reference="R1", category="roads", grid_id="g1",
        description="路灯不亮", context=context(), stage=stage, created_at=T0, updated_at=T0,
        assignments=list(assignments), deadlines=list(deadlines),
    )
    return IssueState(**(fields | changes))
