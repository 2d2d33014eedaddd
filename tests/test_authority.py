"""Who may do what at which stage (domain/authority.py), without a server: one table of actors,
stages and actions, and the few rules that depend on an assignment's state."""

from __future__ import annotations

import re

import pytest

from domain import authority
from domain.authority import Forbidden, NotAllowed
from schemas.actions import (
    Accept, Assign, DecideExtension, Decline, Dispatch, Escalate, Feedback, RequestExtension, Resolve, Review, Urge,
)
from schemas.issue import AssignmentStatus, Extension, Stage
from schemas.principal import Actor
from tests.issue_factory import T0, assignment, deadline, state

GRID = Actor(id="w1", role="grid", unit_id="g1")
OTHER_GRID = Actor(id="w2", role="grid", unit_id="g2")
COMMUNITY = Actor(id="c", role="community", unit_id="c1")
AREA = Actor(id="a", role="area", unit_id="a1")
STREET = Actor(id="s", role="street", unit_id="s1")
OTHER_STREET = Actor(id="s2", role="street", unit_id="s2")
HOUSING = Actor(id="h", role="department", unit_id="housing")
PARKS = Actor(id="p", role="department", unit_id="parks")
SUPERVISOR = Actor(id="sup", role="supervisor")
RESIDENT = Actor(id="res", role="resident")
OPS = Actor(id="ops", role="ops")

OK = None


def at(stage: Stage, status: AssignmentStatus = AssignmentStatus.pending, **changes):
    """An issue at `stage`; from the departments on, housing holds an assignment in `status`."""
    with_departments = stage in (Stage.department, Stage.arbitration, Stage.feedback, Stage.review)
    a = assignment("housing", status)
    return state(stage, [a] if with_departments else [],
                 [deadline(f"accept:{a.key}"), deadline(f"resolve:{a.key}")] if with_departments else [], **changes)


# (rule, input, issue, expected): None when allowed, else the refusal's class and a part of its words.
CASES = [
    # Blowing the whistle: each ladder unit at its own level, on its own issue.
    (authority.may_escalate, Escalate(actor=GRID, reason="r"), at(Stage.grid), OK),
    (authority.may_escalate, Escalate(actor=OTHER_GRID, reason="r"), at(Stage.grid), (Forbidden, "with grid g1, not g2")),
    (authority.may_escalate, Escalate(actor=COMMUNITY, reason="r"), at(Stage.grid), (NotAllowed, "only at stage community")),
    (authority.may_escalate, Escalate(actor=AREA, reason="r"), at(Stage.area), OK),
    (authority.may_escalate, Escalate(actor=STREET, reason="r"), at(Stage.street), (NotAllowed, "use dispatch")),
    (authority.may_escalate, Escalate(actor=HOUSING, reason="r"), at(Stage.grid), (Forbidden, "role department may not")),
    (authority.may_escalate, Escalate(actor=SUPERVISOR, reason="r"), at(Stage.grid), (Forbidden, "role supervisor")),
    # Resolving: a ladder unit at its level; a department once it has reported in.
    (authority.may_resolve, Resolve(actor=GRID, summary="done"), at(Stage.grid), OK),
    (authority.may_resolve, Resolve(actor=GRID, summary="done"), at(Stage.community), (NotAllowed, "only at stage grid")),
    (authority.may_resolve, Resolve(actor=HOUSING, summary="done"), at(Stage.department), (NotAllowed, "report in (accept)")),
    (authority.may_resolve, Resolve(actor=HOUSING, summary="done"), at(Stage.department, AssignmentStatus.accepted), OK),
    (authority.may_resolve, Resolve(actor=PARKS, summary="done"), at(Stage.department), (Forbidden, "parks has no assignment")),
    (authority.may_resolve, Resolve(actor=OPS, summary="done"), at(Stage.grid), (Forbidden, "role ops")),
    # Dispatching: the issue's own street, at the street.
    (authority.may_dispatch, Dispatch(actor=STREET), at(Stage.street), OK),
    (authority.may_dispatch, Dispatch(actor=OTHER_STREET), at(Stage.street), (Forbidden, "with street s1, not s2")),
    (authority.may_dispatch, Dispatch(actor=STREET), at(Stage.area), (NotAllowed, "needs stage street")),
    (authority.may_dispatch, Dispatch(actor=AREA), at(Stage.street), (Forbidden, "role area")),
    # Reporting in, declining: the assigned department, while its assignment is open.
    (authority.may_accept, Accept(actor=HOUSING), at(Stage.department), OK),
    (authority.may_accept, Accept(actor=HOUSING), at(Stage.arbitration), OK),
    (authority.may_accept, Accept(actor=HOUSING), at(Stage.department, AssignmentStatus.accepted), (NotAllowed, "not awaiting report-in")),
    (authority.may_accept, Accept(actor=PARKS), at(Stage.department), (Forbidden, "no assignment")),
    (authority.may_accept, Accept(actor=HOUSING), at(Stage.feedback), (NotAllowed, "at stage feedback")),
    (authority.may_decline, Decline(actor=HOUSING, reason="not ours"), at(Stage.department, AssignmentStatus.accepted), OK),
    (authority.may_decline, Decline(actor=HOUSING, reason="not ours"), at(Stage.department, AssignmentStatus.declined),
     (NotAllowed, "only an open assignment")),
    (authority.may_decline, Decline(actor=STREET, reason="not ours"), at(Stage.department), (Forbidden, "role street")),
    # The supervisor: urges on the ladder and with departments, arbitrates, reviews.
    (authority.may_urge, Urge(actor=SUPERVISOR, note="快"), at(Stage.area), OK),
    (authority.may_urge, Urge(actor=SUPERVISOR, note="快"), at(Stage.arbitration), OK),
    (authority.may_urge, Urge(actor=SUPERVISOR, note="快"), at(Stage.feedback), (NotAllowed, "at stage feedback")),
    (authority.may_urge, Urge(actor=STREET, note="快"), at(Stage.street), (Forbidden, "role street")),
    (authority.may_assign, Assign(actor=SUPERVISOR, department_id="housing", to_department="parks", reason="r"),
     at(Stage.arbitration, AssignmentStatus.declined), OK),
    (authority.may_assign, Assign(actor=SUPERVISOR, department_id="housing", to_department="parks", reason="r"),
     at(Stage.department, AssignmentStatus.pending), (NotAllowed, "no assignment of housing awaits arbitration")),
    (authority.may_assign, Assign(actor=SUPERVISOR, department_id="housing", to_department="zoo", reason="r"),
     at(Stage.arbitration, AssignmentStatus.escalated), (NotAllowed, "unknown department 'zoo'")),
    (authority.may_review, Review(actor=SUPERVISOR, decision="close", reason="r"), at(Stage.review), OK),
    (authority.may_review, Review(actor=SUPERVISOR, decision="close", reason="r"), at(Stage.feedback), (NotAllowed, "needs stage review")),
    # Only the resident answers, and only while the window is open.
    (authority.may_give_feedback, Feedback(actor=RESIDENT, satisfied=True), at(Stage.feedback), OK),
    (authority.may_give_feedback, Feedback(actor=GRID, satisfied=True), at(Stage.feedback), (Forbidden, "role grid")),
    (authority.may_give_feedback, Feedback(actor=RESIDENT, satisfied=True), at(Stage.department), (NotAllowed, "needs stage feedback")),
]


@pytest.mark.parametrize(("rule", "action", "issue", "expected"), CASES,
                         ids=[f"{c[0].__name__}-{c[1].actor.role}-{c[2].stage}" for c in CASES])
def test_who_may_do_what_at_which_stage(rule, action, issue, expected):
    if expected is OK:
        rule(issue, action)
        return
    refusal, words = expected
    with pytest.raises(refusal, match=re.escape(words)):
        rule(issue, action)


def test_a_dispatch_follows_the_mapping_unless_overridden_with_a_reason():
    issue = at(Stage.street)
    assert authority.dispatch_targets(issue, Dispatch(actor=STREET)) == ("housing", ["water"], False)
    # Another lead takes no cooperating departments of the mapping, and needs a reason.
    with pytest.raises(NotAllowed, match="give a reason"):
        authority.dispatch_targets(issue, Dispatch(actor=STREET, lead_department="parks"))
    assert authority.dispatch_targets(issue, Dispatch(actor=STREET, lead_department="parks", reason="绿化带")) == ("parks", [], True)
    with pytest.raises(NotAllowed, match="each department may appear once"):
        authority.dispatch_targets(issue, Dispatch(actor=STREET, cooperating_departments=["housing"], reason="r"))
    with pytest.raises(NotAllowed, match="unknown department 'zoo'"):
        authority.dispatch_targets(issue, Dispatch(actor=STREET, lead_department="zoo", reason="r"))


def test_an_extension_needs_its_clock_running_and_none_pending():
    issue = at(Stage.department, AssignmentStatus.accepted)
    ask = RequestExtension(actor=HOUSING, deadline="resolve", extend_by="2WD", reason="材料未到")
    authority.may_request_extension(issue, ask)
    issue.deadlines[1].open = False
    with pytest.raises(NotAllowed, match="resolve deadline of housing is not running"):
        authority.may_request_extension(issue, ask)
    issue.deadlines[1].open = True
    issue.assignments[0].extensions.append(
        Extension(deadline="resolve", extend_by="2WD", reason="r", requested_by="h", requested_at=T0))
    with pytest.raises(NotAllowed, match="already awaiting the supervisor"):
        authority.may_request_extension(issue, ask)
    authority.may_decide_extension(issue, DecideExtension(actor=SUPERVISOR, department_id="housing", approve=True))
    with pytest.raises(NotAllowed, match="no extension request of parks"):
        authority.may_decide_extension(issue, DecideExtension(actor=SUPERVISOR, department_id="parks", approve=True))


@pytest.mark.parametrize("rulebook", [1, 2])
def test_book_2_asks_feedback_only_of_a_recorded_resident(rulebook):
    """A unit's own finding (a patrol) has no resident to ask: book 2 refuses a `feedback` on it,
    so nobody but a resident scores a handler. Issues registered under book 1 keep their rules."""
    patrol = at(Stage.feedback, has_reporter=False, rulebook=rulebook)
    answer = Feedback(actor=RESIDENT, satisfied=True)
    if rulebook == 1:
        authority.may_give_feedback(patrol, answer)
    else:
        with pytest.raises(NotAllowed, match="no resident was recorded"):
            authority.may_give_feedback(patrol, answer)
    authority.may_give_feedback(at(Stage.feedback, has_reporter=True, rulebook=rulebook), answer)
    patrol_with_contact = at(Stage.feedback, has_reporter=True, channel="patrol", rulebook=rulebook)
    assert not authority.someone_to_ask(patrol_with_contact)  # a patrol's own finding, as the league counts it


@pytest.mark.parametrize("rulebook", [1, 2])
def test_book_2_urges_only_units_with_a_part_in_the_issue(rulebook):
    issue = at(Stage.department, rulebook=rulebook)
    for unit in ("g1", "s1", "housing", None):  # its chain, an assigned department, or its owners
        authority.may_urge(issue, Urge(actor=SUPERVISOR, note="快", unit_id=unit))
    stranger = Urge(actor=SUPERVISOR, note="快", unit_id="donghua")
    if rulebook == 1:
        authority.may_urge(issue, stranger)
    else:
        with pytest.raises(NotAllowed, match="donghua has no part in this issue"):
            authority.may_urge(issue, stranger)
