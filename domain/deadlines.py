"""The deadline rules: which clock runs against whom, under which policy, what closes it, what
is due when, and what a miss does. Pure: the workflow (workflows/issue/) carries them out and
computes the due times (working days need the calendar, a local activity).

The clocks of an issue, by kind:

| kind      | against          | opens when                                   | policy                              | closes when                          | a miss                                             |
|-----------|------------------|----------------------------------------------|-------------------------------------|--------------------------------------|----------------------------------------------------|
| handle    | a ladder unit    | the issue reaches its level (not passed on)  | `policies.<level>.handle`           | the issue leaves the level           | penalty; escalates (the street: dispatch by the category's mapping) |
| accept    | a department     | it is assigned (not on a reopen)             | `department.accept` (`urgent_accept`) | it reports in, declines, resolves  | penalty; the assignment awaits the supervisor (arbitration) |
| resolve   | a department     | it is assigned                               | `department.resolve`                | it resolves or declines              | penalty; 督办 each `supervision` until it resolves |
| supervise | a department     | its resolve clock was missed, then again     | `supervision`                       | it resolves or declines              | (no penalty) the next 督办                         |
| feedback  | the resident     | the issue is resolved                        | `feedback_window`                   | the resident answers                 | (no penalty) closed without feedback               |

A department may ask for more time on its accept or resolve clock; an approved extension moves
that clock's due time (and the assignment's `<kind>_due`). Reminders go out at fractions of a
clock's span while it runs; one falling due after its clock's own due time is dropped (the miss
says it all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain.ladder import Level
from schemas.deadline import DeadlineSpec
from schemas.issue import Assignment, Deadline, DeadlineKind, Stage
from schemas.jurisdiction import Policies

RESIDENT = "resident"  # the unit id of the resident's own clock (the feedback window)


@dataclass(frozen=True)
class DeadlineKey:
    """A clock's key, unique within its issue: `<kind>:<subject>`. The subject of a
    department's clocks is its assignment's key (`<department>:<round>`); of a 督办, the
    assignment's key and its number; of a ladder level's or the resident's, the unit and the
    issue's count of clocks so far."""

    kind: DeadlineKind
    subject: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.subject}"

    @staticmethod
    def of_assignment(kind: Literal["accept", "resolve"], a: Assignment) -> "DeadlineKey":
        return DeadlineKey(kind, a.key)

    @staticmethod
    def supervision(a: Assignment, n: int) -> "DeadlineKey":
        return DeadlineKey("supervise", f"{a.key}:{n}")

    @staticmethod
    def numbered(kind: Literal["handle", "feedback"], unit_id: str, deadlines: list[Deadline]) -> "DeadlineKey":
        return DeadlineKey(kind, f"{unit_id}:{len(deadlines) + 1}")


def find(deadlines: list[Deadline], key: DeadlineKey) -> Deadline | None:
    return next((d for d in deadlines if d.key == str(key)), None)


def belongs_to(d: Deadline, a: Assignment) -> bool:
    """Whether `d` is one of the assignment's clocks: report-in, resolve or a 督办."""
    return d.key in (str(DeadlineKey.of_assignment("accept", a)), str(DeadlineKey.of_assignment("resolve", a))) or (
        d.kind == "supervise" and d.key.startswith(f"supervise:{a.key}:")
    )


def assignment_of(d: Deadline, assignments: list[Assignment]) -> Assignment:
    """The assignment whose clock `d` is."""
    return next(a for a in assignments if belongs_to(d, a))


def supervisions_so_far(a: Assignment, deadlines: list[Deadline]) -> int:
    return sum(1 for d in deadlines if d.kind == "supervise" and belongs_to(d, a))


def policy(kind: DeadlineKind, policies: Policies, level: Level | None = None, urgent: bool = False) -> tuple[DeadlineSpec, list[float]]:
    """The span of a new clock of `kind` and the fractions of it at which reminders go out."""
    if kind == "handle":
        assert level is not None, "a handle clock is a ladder level's"
        p = policies.for_level(level)
        return p.handle, p.reminders
    if kind == "accept":
        return (policies.urgent_accept if urgent else policies.department.accept), policies.department.reminders
    if kind == "resolve":
        return policies.department.resolve, policies.department.reminders
    if kind == "feedback":
        return policies.feedback_window, []
    return policies.supervision, []


def set_assignment_due(a: Assignment, kind: Literal["accept", "resolve"], due_at: datetime) -> None:
    """An extended clock's new due time, as the assignment shows it."""
    if kind == "accept":
        a.accept_due = due_at
    else:
        a.resolve_due = due_at


def running(deadlines: list[Deadline]) -> list[Deadline]:
    return [d for d in deadlines if d.open]


def next_due_time(deadlines: list[Deadline]) -> datetime | None:
    """The earliest reminder or due time among the running clocks: when the workflow must wake."""
    times: list[datetime] = []
    for d in running(deadlines):
        times.append(d.due_at)
        times += [d.reminder_at(f) for f in d.reminders if f not in d.reminders_sent]
    return min(times) if times else None


def earliest_due_at(deadlines: list[Deadline]) -> datetime | None:
    """The issue's own due time: the earliest due time of its running clocks."""
    dues = [d.due_at for d in running(deadlines)]
    return min(dues) if dues else None


@dataclass(frozen=True)
class Due:
    """Something that fell due: a reminder (`fraction` set) or the clock's own due time."""

    at: datetime
    deadline: Deadline
    fraction: float | None = None


def first_due(deadlines: list[Deadline], until: datetime) -> Due | None:
    """What fell due by `until`, earliest first; at the same moment a reminder before a due
    time, and by key. The workflow acts on one, then asks again: acting may close or open clocks."""
    due = [(d.due_at, 1, d.key, Due(d.due_at, d)) for d in running(deadlines) if d.due_at <= until] + [
        (d.reminder_at(f), 0, d.key, Due(d.reminder_at(f), d, f))
        for d in running(deadlines)
        for f in d.reminders
        if f not in d.reminders_sent and d.reminder_at(f) <= until
    ]
    return min(due, key=lambda t: t[:3])[3] if due else None


Consequence = Literal["close_without_feedback", "escalate", "dispatch_by_mapping", "arbitration", "supervise", "penalty_only"]


def consequence_of_miss(d: Deadline, stage: Stage, supervises_missed_resolve: bool = True) -> Consequence:
    """What a missed clock does besides its penalty (a missed feedback window has none).
    `supervises_missed_resolve`: runs before patch v5 only penalised a missed resolve."""
    if d.kind == "feedback":
        return "close_without_feedback"
    if d.kind == "handle":
        return "dispatch_by_mapping" if stage == Stage.street else "escalate"
    if d.kind == "accept":
        return "arbitration"
    if d.kind == "resolve" and supervises_missed_resolve:
        return "supervise"
    return "penalty_only"

