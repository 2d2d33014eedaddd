"""The read model's rows of one transition, built from the workflow's state and event: the
argument tuples of the statements in queries.py (INSERT_EVENT, UPSERT_ISSUE, UPSERT_ASSIGNMENT,
INSERT_PENALTY), in their column order. The snapshot is the state as the workflow holds it,
without personal data (the reporter's contact never enters the state)."""

from __future__ import annotations

from domain.ladder import Level
from schemas.issue import IssueEvent, IssueState


def event_row(s: IssueState, e: IssueEvent) -> tuple:
    return (
        s.issue_id, e.seq, e.at, e.kind,
        e.stage_from.value if e.stage_from else None, e.stage_to.value if e.stage_to else None,
        e.unit_id, e.actor.id if e.actor else None, e.actor.role.value if e.actor else None,
        e.detail,
    )


def issue_row(s: IssueState, e: IssueEvent) -> tuple:
    chain = s.context.chain
    return (
        s.issue_id, s.workflow_id, s.channel, s.reference, s.category, s.grid_id,
        chain.get(Level.community), chain.get(Level.area), chain.get(Level.street),
        s.stage.value, s.owner_unit, s.overdue, s.due_at, s.outcome.value if s.outcome else None,
        s.reopens, s.created_at, s.updated_at, s.closed_at, e.seq,
        s.model_dump(mode="json"),
    )


def assignment_rows(s: IssueState, e: IssueEvent) -> list[tuple]:
    street = s.context.chain.get(Level.street)
    return [
        (s.issue_id, a.department_id, a.round, a.role, a.status.value, street,
         a.assigned_at, a.accept_due, a.accepted_at, a.resolve_due, a.resolved_at, e.seq)
        for a in s.assignments
    ]


def penalty_rows(s: IssueState) -> list[tuple]:
    return [(s.issue_id, p.deadline_key, p.unit_id, p.kind, p.due_at, p.recorded_at) for p in s.penalties]
