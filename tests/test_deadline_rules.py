"""The deadline rules (domain/deadlines.py) and who holds an issue (domain/ownership.py),
without a server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.deadlines import (
    DeadlineKey, assignment_of, belongs_to, consequence_of_miss, earliest_due_at, first_due, next_due_time, policy,
    set_assignment_due, supervisions_so_far,
)
from domain.ladder import Level
from domain.ownership import SUPERVISOR, awaiting_arbitration, owners
from schemas.deadline import DeadlineSpec
from schemas.issue import AssignmentStatus, Stage
from schemas.jurisdiction import LevelPolicy, Policies
from tests.issue_factory import T0, assignment, deadline, state

H = timedelta(hours=1)


def test_keys_name_the_clock_and_what_it_runs_against():
    a = assignment("housing", round=2)
    assert str(DeadlineKey.of_assignment("accept", a)) == "accept:housing:2"
    assert str(DeadlineKey.supervision(a, 3)) == "supervise:housing:2:3"
    assert str(DeadlineKey.numbered("handle", "g1", [deadline("handle:x:1")])) == "handle:g1:2"
    clocks = [deadline("accept:housing:2"), deadline("resolve:housing:2"), deadline("supervise:housing:2:1"),
              deadline("resolve:housing:20"), deadline("supervise:housing:20:1"), deadline("handle:s1:1")]
    assert [belongs_to(d, a) for d in clocks] == [True, True, True, False, False, False]
    assert supervisions_so_far(a, clocks) == 1
    other = assignment("housing", round=20)
    assert assignment_of(clocks[4], [a, other]) is other


@pytest.mark.parametrize(("kind", "level", "urgent", "spec", "reminders"), [
    ("handle", Level.community, False, "2WD", [0.25]),
    ("accept", None, False, "3WD", [0.5, 0.8]),
    ("accept", None, True, "PT30M", [0.5, 0.8]),
    ("resolve", None, True, "6WD", [0.5, 0.8]),
    ("feedback", None, False, "3WD", []),
    ("supervise", None, False, "1WD", []),
])
def test_each_clock_takes_its_span_from_its_policy(kind, level, urgent, spec, reminders):
    policies = Policies(community=LevelPolicy(handle="2WD", reminders=[0.25]))
    assert policy(kind, policies, level, urgent) == (DeadlineSpec.model_validate(spec), reminders)


def test_what_falls_due_comes_earliest_first_and_a_reminder_before_a_due_time():
    a = deadline("handle:g1:1", due_in=4 * H, reminders=[0.5])  # reminder at +2h, due at +4h
    b = deadline("handle:c1:2", due_in=2 * H, reminders=[])  # due at +2h, with a's reminder
    c = deadline("handle:a1:3", due_in=H, reminders=[], open=False)  # closed: never due
    clocks = [a, b, c]
    assert next_due_time(clocks) == T0 + 2 * H and earliest_due_at(clocks) == T0 + 2 * H
    assert first_due(clocks, T0 + H) is None
    due = first_due(clocks, T0 + 2 * H)
    assert (due.deadline, due.fraction) == (a, 0.5)
    a.reminders_sent.append(0.5)
    assert first_due(clocks, T0 + 2 * H).deadline is b
    assert next_due_time(clocks) == T0 + 2 * H  # b still runs
    b.open = False
    assert next_due_time(clocks) == T0 + 4 * H
    a.open = False
    assert next_due_time(clocks) is None and earliest_due_at(clocks) is None


@pytest.mark.parametrize(("key", "stage", "supervises", "consequence"), [
    ("handle:g1:1", Stage.grid, True, "escalate"),
    ("handle:a1:3", Stage.area, True, "escalate"),
    ("handle:s1:4", Stage.street, True, "dispatch_by_mapping"),
    ("accept:housing:1", Stage.department, True, "arbitration"),
    ("resolve:housing:1", Stage.department, True, "supervise"),
    ("resolve:housing:1", Stage.department, False, "penalty_only"),  # runs before patch v5
    ("feedback:resident:7", Stage.feedback, True, "close_without_feedback"),
])
def test_what_a_missed_clock_does(key, stage, supervises, consequence):
    assert consequence_of_miss(deadline(key), stage, supervises) == consequence


def test_an_extension_moves_the_assignment_s_own_due_time():
    a = assignment()
    set_assignment_due(a, "accept", T0 + H)
    set_assignment_due(a, "resolve", T0 + 2 * H)
    assert (a.accept_due, a.resolve_due) == (T0 + H, T0 + 2 * H)


@pytest.mark.parametrize(("stage", "statuses", "expected"), [
    (Stage.grid, [], ["g1"]),
    (Stage.street, [], ["s1"]),
    (Stage.department, [AssignmentStatus.pending, AssignmentStatus.resolved], ["housing"]),
    (Stage.arbitration, [AssignmentStatus.declined, AssignmentStatus.accepted], [SUPERVISOR, "water"]),
    (Stage.feedback, [AssignmentStatus.resolved], ["resident"]),
    (Stage.review, [], [SUPERVISOR]),
    (Stage.closed, [AssignmentStatus.resolved], []),
])
def test_who_holds_the_issue_at_each_stage(stage, statuses, expected):
    deps = ["housing", "water"]
    issue = state(stage, [assignment(deps[i], s) for i, s in enumerate(statuses)])
    assert owners(issue) == expected
    assert awaiting_arbitration(issue.assignments) == (stage == Stage.arbitration)
