"""Request and response models of the HTTP API (what /openapi.json publishes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.intake import REFERENCE_PATTERN, Channel, Reporter
from schemas.issue import IssueState
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


class IssueView(IssueState):
    """The issue's state; `reporter` only for principals who handle the issue."""

    reporter: Reporter | None = None


class IntakeResponse(BaseModel):
    issue_id: str
    workflow_id: str
    created: bool
    feedback_token: str | None = Field(
        default=None,
        description="for intake services only: give it to the resident, it lets them send feedback on this issue "
        "(for an issue a handler enters, the token goes to the reporter's phone or e-mail)",
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
