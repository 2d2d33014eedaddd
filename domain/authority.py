"""Who may do what at which stage: one check per action, over the issue's state and the action's
input. A check returns when the action may go ahead and raises `Forbidden` (this actor may not:
the API answers 403) or `NotAllowed` (not in this state: 409). The workflow runs each check as
its update's validator, and again under its lock before acting.

| action           | who                                  | at which stage                      | besides                                        |
|------------------|--------------------------------------|-------------------------------------|------------------------------------------------|
| escalate         | grid, community, area                | its own level, its own unit         | the street dispatches instead                  |
| resolve          | a ladder unit / a department         | its own level / department, arbitration | a department reports in first             |
| dispatch         | the issue's street                   | street                              | departments known, once each; a reason for an override of the category's mapping |
| accept           | an assigned department               | department, arbitration             | its assignment awaits report-in                |
| decline          | an assigned department               | department, arbitration             | its assignment is open                         |
| request_extension| an assigned department               | department, arbitration             | none pending; that clock running               |
| decide_extension | the supervisor                       | department, arbitration             | a request pending                              |
| assign           | the supervisor                       | department, arbitration             | the assignment awaits arbitration; the new department known and free |
| urge             | the supervisor                       | ladder, department, arbitration     | (book 2) a named unit has a part in the issue  |
| feedback         | the resident                         | feedback                            | (book 2) a resident was recorded               |
| review           | the supervisor                       | review                              | a reassignment's department known              |
"""

from __future__ import annotations

from domain import deadlines
from domain.deadlines import DeadlineKey
from domain.ownership import ladder_unit
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
    Urge,
)
from schemas.issue import LADDER_STAGES, Assignment, AssignmentStatus, IssueState, Stage
from schemas.principal import Actor, Role

# Rule books: an issue keeps the book it was registered under (IssueState.rulebook, chosen by
# patch, workflows/patches.py), so that its accepted actions stay accepted on replay. Book 2:
# feedback only where a resident was recorded to ask; urges only to units with a part in the issue.


class Refusal(Exception):
    """An action refused; `str()` says why, in words for the person who tried."""


class Forbidden(Refusal):
    """This actor may not."""


class NotAllowed(Refusal):
    """Not in the issue's current state."""


# ----------------------------------------------------------------------------- the actions
def may_accept(s: IssueState, input: Accept) -> None:
    _role(input.actor, Role.department)
    _stage(s, Stage.department, Stage.arbitration)
    a = own_assignment(s, input.actor)
    if a.status != AssignmentStatus.pending:
        raise NotAllowed(f"the assignment of {a.department_id} is {a.status}, not awaiting report-in")


def may_resolve(s: IssueState, input: Resolve) -> None:
    actor = _role(input.actor, Role.grid, Role.community, Role.area, Role.street, Role.department)
    if actor.role == Role.department:
        _stage(s, Stage.department, Stage.arbitration)
        a = own_assignment(s, actor)
        if a.status != AssignmentStatus.accepted:
            raise NotAllowed(f"the assignment of {a.department_id} is {a.status}: report in (accept) before resolving")
        return
    _own_ladder_stage(s, actor, "resolve")


def may_escalate(s: IssueState, input: Escalate) -> None:
    actor = _role(input.actor, Role.grid, Role.community, Role.area, Role.street)
    if s.stage == Stage.street:
        raise NotAllowed("the street blows the whistle by dispatching to departments: use dispatch")
    _own_ladder_stage(s, actor, "escalate")


def may_dispatch(s: IssueState, input: Dispatch) -> None:
    actor = _role(input.actor, Role.street)
    _stage(s, Stage.street)
    if actor.unit_id != ladder_unit(s, Stage.street):
        raise Forbidden(f"the issue is with street {ladder_unit(s, Stage.street)}, not {actor.unit_id}")
    dispatch_targets(s, input)


def may_decline(s: IssueState, input: Decline) -> None:
    _role(input.actor, Role.department)
    _stage(s, Stage.department, Stage.arbitration)
    a = own_assignment(s, input.actor)
    if a.status not in (AssignmentStatus.pending, AssignmentStatus.accepted):
        raise NotAllowed(f"the assignment of {a.department_id} is {a.status}; only an open assignment can be declined")


def may_request_extension(s: IssueState, input: RequestExtension) -> None:
    _role(input.actor, Role.department)
    _stage(s, Stage.department, Stage.arbitration)
    a = own_assignment(s, input.actor)
    if a.pending_extension() is not None:
        raise NotAllowed("an extension request of this assignment is already awaiting the supervisor")
    d = deadlines.find(s.deadlines, DeadlineKey.of_assignment(input.deadline.value, a))
    if d is None or not d.open:
        raise NotAllowed(f"the {input.deadline.value} deadline of {a.department_id} is not running")


def may_decide_extension(s: IssueState, input: DecideExtension) -> None:
    _role(input.actor, Role.supervisor)
    _stage(s, Stage.department, Stage.arbitration)
    a = s.assignment(input.department_id)
    if a is None or a.pending_extension() is None:
        raise NotAllowed(f"no extension request of {input.department_id} awaits a decision")


def may_assign(s: IssueState, input: Assign) -> None:
    _role(input.actor, Role.supervisor)
    _stage(s, Stage.department, Stage.arbitration)
    a = s.assignment(input.department_id)
    if a is None or a.status not in (AssignmentStatus.declined, AssignmentStatus.escalated):
        raise NotAllowed(f"no assignment of {input.department_id} awaits arbitration")
    _known_department(s, input.to_department)
    other = s.assignment(input.to_department)
    if input.to_department != input.department_id and other is not None and other.status != AssignmentStatus.resolved:
        raise NotAllowed(f"{input.to_department} already has an open assignment on this issue")


def may_urge(s: IssueState, input: Urge) -> None:
    _role(input.actor, Role.supervisor)
    _stage(s, *LADDER_STAGES, Stage.department, Stage.arbitration)
    if s.rulebook >= 2 and input.unit_id is not None and input.unit_id not in units_of(s):
        raise NotAllowed(f"{input.unit_id} has no part in this issue: urge one of {', '.join(units_of(s))}")


def may_give_feedback(s: IssueState, input: Feedback) -> None:
    _role(input.actor, Role.resident)
    _stage(s, Stage.feedback)
    if s.rulebook >= 2 and not someone_to_ask(s):
        raise NotAllowed("no resident was recorded for this issue (a unit's own finding): it closes without a satisfaction score")


def may_review(s: IssueState, input: Review) -> None:
    _role(input.actor, Role.supervisor)
    _stage(s, Stage.review)
    if input.to_department is not None:
        _known_department(s, input.to_department)


# ----------------------------------------------------------------------------- shared rules
def own_assignment(s: IssueState, actor: Actor) -> Assignment:
    """The acting department's current assignment; a department without one may not act."""
    a = s.assignment(actor.unit_id or "")
    if a is None:
        raise Forbidden(f"department {actor.unit_id} has no assignment on this issue")
    return a


def someone_to_ask(s: IssueState) -> bool:
    """Whether a resident can be asked for feedback: a reporter's contact was recorded, and the
    issue is not a grid patrol's own finding. The league counts satisfaction by the same rule
    (whistle/db/queries.py, `resident_feedback`)."""
    return s.has_reporter and s.channel != "patrol"


def units_of(s: IssueState) -> list[str]:
    """The units with a part in the issue: its chain up the ladder, then every department it
    was assigned to."""
    return list(dict.fromkeys([*s.context.chain.values(), *(a.department_id for a in s.assignments)]))


def dispatch_targets(s: IssueState, input: Dispatch) -> tuple[str, list[str], bool]:
    """The departments a dispatch assigns (lead, cooperating) and whether it overrides the
    category's mapping, which needs a reason. Without a choice, the mapping's own."""
    ctx = s.context
    lead = input.lead_department or ctx.lead_department
    if input.cooperating_departments is not None:
        cooperating = list(input.cooperating_departments)
    else:
        cooperating = list(ctx.cooperating_departments) if lead == ctx.lead_department else []
    for dep in [lead, *cooperating]:
        _known_department(s, dep)
    if lead in cooperating or len(set(cooperating)) != len(cooperating):
        raise NotAllowed("each department may appear once, and the lead not among the cooperating")
    override = lead != ctx.lead_department or sorted(cooperating) != sorted(ctx.cooperating_departments)
    if override and not (input.reason and input.reason.strip()):
        raise NotAllowed(
            f"this overrides the category's mapping (lead {ctx.lead_department}, "
            f"cooperating {ctx.cooperating_departments}); give a reason"
        )
    return lead, cooperating, override


def _role(actor: Actor, *roles: Role) -> Actor:
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"role {actor.role} may not do this; allowed: {allowed}")
    return actor


def _stage(s: IssueState, *stages: Stage) -> None:
    if s.stage not in stages:
        allowed = ", ".join(x.value for x in stages)
        raise NotAllowed(f"the issue is at stage {s.stage}; this needs stage {allowed}")


def _own_ladder_stage(s: IssueState, actor: Actor, action: str) -> None:
    stage = Stage(actor.role.value)
    if s.stage != stage:
        raise NotAllowed(f"the issue is at stage {s.stage}; a {actor.role} can {action} it only at stage {stage}")
    unit = ladder_unit(s, stage)
    if actor.unit_id != unit:
        raise Forbidden(f"the issue is with {stage} {unit}, not {actor.unit_id}")


def _known_department(s: IssueState, department_id: str) -> None:
    if department_id not in s.context.departments:
        raise NotAllowed(f"unknown department {department_id!r}")
