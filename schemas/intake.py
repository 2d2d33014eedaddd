"""An issue as it arrives from an intake channel."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.text import RefusesNul


class Channel(StrEnum):
    hotline = "hotline"  # 12345
    qr = "qr"  # QR codes posted in every community
    wechat = "wechat"  # mini-programs
    patrol = "patrol"  # grid patrols
    walkin = "walkin"
    open311 = "open311"


class Reporter(BaseModel):
    """Personal data: encrypted in workflow payloads, never logged, never in the read model."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{5,20}$")
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    def __repr__(self) -> str:  # keep personal data out of reprs and tracebacks
        return "Reporter(<redacted>)"

    __str__ = __repr__


REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


def issue_id_for(channel: Channel | str, reference: str) -> str:
    """The issue id is derived from (channel, reference), so the same intake is the same issue."""
    return f"{Channel(channel).value}-{reference}"


def workflow_id_for(issue_id: str) -> str:
    return f"issue-{issue_id}"


class IssueIntake(RefusesNul):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    reference: str = Field(pattern=REFERENCE_PATTERN, description="the channel's own id of this report")
    category: str = Field(min_length=1, max_length=64)
    grid_id: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=4000)
    address: str | None = Field(default=None, max_length=500)
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=32)
    reporter: Reporter | None = None
    urgent: bool = False
    reported_at: datetime | None = None

    @model_validator(mode="after")
    def _check(self) -> "IssueIntake":
        for k, v in self.attributes.items():
            if len(k) > 32 or len(v) > 500:
                raise ValueError("attributes: keys ≤ 32 and values ≤ 500 characters")
        return self

    @property
    def issue_id(self) -> str:
        return issue_id_for(self.channel, self.reference)

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.issue_id)
