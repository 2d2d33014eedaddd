"""One pydantic model per IssueWorkflow update. Each carries the acting `actor`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from schemas.deadline import DeadlineSpec
from schemas.principal import Actor
from schemas.text import RefusesNul

Reason = Field(min_length=1, max_length=1000)


class _Action(RefusesNul):
    model_config = ConfigDict(extra="forbid")
    actor: Actor



class Accept(_Action):
    """A department reports in (报到/接单) on its assignment."""

    note: str = Field(default="", max_length=1000)


class Resolve(_Action):
    """The owner (grid worker on the spot, community, area, street, or an assigned department)
    says the work is done."""

    summary: str = Field(min_length=1, max_length=4000)


class Escalate(_Action):
    """Blow the whistle: pass the issue one level up."""

    reason: str = Reason
    urgent: bool = False


class Dispatch(_Action):
    """The street sends the issue to departments (派单). Without departments, the category's
    mapping decides; an override of the mapping needs a reason."""

    lead_department: str | None = Field(default=None, max_length=64)
    cooperating_departments: list[str] | None = Field(default=None, max_length=10)
    reason: str | None = Field(default=None, max_length=1000)
    urgent: bool = False


class Decline(_Action):
    """"Not our duty": a department returns its assignment; the supervisor arbitrates."""

    reason: str = Reason


class DeadlineKind(StrEnum):
    accept = "accept"
    resolve = "resolve"


class RequestExtension(_Action):
    deadline: DeadlineKind = DeadlineKind.resolve
    extend_by: DeadlineSpec
    reason: str = Reason


class DecideExtension(_Action):
    department_id: str = Field(min_length=1, max_length=64)
    approve: bool
    comment: str = Field(default="", max_length=1000)


class Assign(_Action):
    """The supervisor arbitrates a declined or escalated assignment: to the same department
    (decline overruled) or another."""

    department_id: str = Field(min_length=1, max_length=64, description="the assignment being arbitrated")
    to_department: str = Field(min_length=1, max_length=64)
    reason: str = Reason


class Urge(_Action):
    """督办: a supervisor's order to the current owner(s), or to one unit."""

    note: str = Field(min_length=1, max_length=1000)
    unit_id: str | None = Field(default=None, max_length=64)


class Feedback(_Action):
    satisfied: bool
    comment: str = Field(default="", max_length=2000)


class ReviewDecision(StrEnum):
    close = "close"
    reassign = "reassign"


class Review(_Action):
    """After repeated dissatisfaction: close, or reassign to a department."""

    decision: ReviewDecision
    reason: str = Reason
    to_department: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _target(self) -> "Review":
        if self.decision == ReviewDecision.reassign and not self.to_department:
            raise ValueError("reassign needs to_department")
        return self
