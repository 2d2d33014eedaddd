"""Who holds an issue at each stage: the unit that must act next, as the read model, the search
attributes and the API show it."""

from __future__ import annotations

from domain.deadlines import RESIDENT
from domain.ladder import Level
from schemas.issue import LADDER_STAGES, Assignment, AssignmentStatus, IssueState, Stage

SUPERVISOR = "supervisor"  # the unit id of the district's supervisor (arbitration, review, 督办)


def ladder_unit(s: IssueState, stage: Stage) -> str:
    """The unit of the issue's chain at a ladder stage: its grid, community, area or street."""
    return s.context.chain[Level(stage.value)]


def owners(s: IssueState) -> list[str]:
    """On the ladder, the level's unit; with departments, those whose assignment is open (and
    the supervisor first while one awaits arbitration); then the resident, then the supervisor's
    review; nobody once closed."""
    if s.stage in LADDER_STAGES:
        return [ladder_unit(s, s.stage)]
    if s.stage in (Stage.department, Stage.arbitration):
        open_ = [a for a in s.open_assignments() if a.status in (AssignmentStatus.pending, AssignmentStatus.accepted)]
        return ([SUPERVISOR] if s.stage == Stage.arbitration else []) + [a.department_id for a in open_]
    if s.stage == Stage.feedback:
        return [RESIDENT]
    if s.stage == Stage.review:
        return [SUPERVISOR]
    return []


def awaiting_arbitration(assignments: list[Assignment]) -> bool:
    """Whether an assignment was declined or missed its report-in, and awaits the supervisor."""
    return any(a.status in (AssignmentStatus.declined, AssignmentStatus.escalated) for a in assignments)
