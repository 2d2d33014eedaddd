"""Request and response models of the HTTP API (what /openapi.json publishes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.intake import REFERENCE_PATTERN, Channel, Reporter
from domain.ladder import Level
from schemas.issue import Assignment, EventKind, IssueState, Outcome, Penalty, Stage
from schemas.text import RefusesControls


class IntakeRequest(RefusesControls):
    """POST /v1/issues. Location: grid_id, or lat and long, or an address naming a community or grid."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    reference: str = Field(pattern=REFERENCE_PATTERN)
    category: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=4000)
    grid_id: str | None = Field(default=None, max_length=64)
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=500)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=32)
    reporter: Reporter | None = None
    urgent: bool = False


class IssueView(BaseModel):
    """An issue as the API shows it: where it stands, who holds it, its assignments, penalties
    and outcome. Not the workflow's internals (its policies, running clocks, cycle and run
    counts); its events are in the read model. `reporter` only for principals who handle the
    issue."""

    issue_id: str
    workflow_id: str
    channel: str
    reference: str
    category: str
    grid_id: str
    street_id: str | None = None
    description: str
    address: str | None = None
    lat: float | None = None
    long: float | None = None
    urgent: bool
    stage: Stage
    owners: list[str]
    owner_unit: str | None = None
    overdue: bool
    due_at: datetime | None = None
    assignments: list[Assignment]
    penalties: list[Penalty]
    urges: int
    reopens: int
    resolved_by: list[str]
    resolution: str | None = None
    outcome: Outcome | None = None
    has_reporter: bool = Field(description="whether a resident can be asked for feedback")
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    seq: int = Field(description="the number of the issue's last event")
    reporter: Reporter | None = None


class EventView(BaseModel):
    """One thing that happened to an issue, as the read model keeps it."""

    seq: int
    at: datetime
    kind: EventKind
    stage_from: Stage | None = None
    stage_to: Stage | None = None
    unit_id: str | None = None
    actor_id: str | None = None
    actor_role: str | None = None
    detail: dict[str, Any] = {}


def issue_view(s: IssueState, reporter: Reporter | None = None) -> IssueView:
    """The public view of the workflow's state."""
    fields = IssueView.model_fields.keys() - {"street_id", "reporter"}
    return IssueView(**{k: getattr(s, k) for k in fields}, street_id=s.context.chain.get(Level.street), reporter=reporter)


class IntakeResponse(BaseModel):
    issue_id: str
    workflow_id: str
    created: bool
    feedback_token: str | None = Field(
        default=None,
        description="for intake services only: give it to the resident, it lets them send feedback on this issue "
        "(for an issue a handler enters, the token goes to the reporter's phone or e-mail). None when there is "
        "nobody to ask: no reporter's contact, or a grid patrol's own finding",
    )
    issue: IssueView


class IssueRow(BaseModel):
    issue_id: str
    channel: str
    category: str
    stage: str
    owner_unit: str | None
    street_id: str | None
    overdue: bool
    due_at: Any
    created_at: Any
    updated_at: Any
    outcome: str | None


class IssueList(BaseModel):
    issues: list[IssueRow]
    total: int
    limit: int
    offset: int
