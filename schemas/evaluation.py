"""Reverse evaluation (逆向考评): communities rate the streets and departments that handled
their issues in the previous quarter."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from schemas.base import Model as _Model
from schemas.deadline import DeadlineSpec
from schemas.principal import Actor
from schemas.text import RefusesNul

QUARTER = Field(pattern=r"^\d{4}Q[1-4]$")


class EvaluationInput(_Model):
    quarter: str = QUARTER
    # Defaults to the jurisdiction's policies.evaluation_window, recorded when the round opens.
    window: DeadlineSpec | None = None
    reminders: list[float] = [0.5, 0.8]


class CommunityTargets(_Model):
    community_id: str
    targets: list[str]  # street and department ids


class Rating(_Model, RefusesNul):
    """One community's rating of one street or department (1–5 each)."""

    actor: Actor
    target_id: str = Field(min_length=1, max_length=64)
    responsiveness: int = Field(ge=1, le=5)
    quality: int = Field(ge=1, le=5)
    attitude: int = Field(ge=1, le=5)
    pushed_down: bool = Field(default=False, description="pushed down a task outside the duty list")
    evidence: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _evidence(self) -> "Rating":
        if self.pushed_down and not (self.evidence and self.evidence.strip()):
            raise ValueError("pushed_down needs evidence")
        return self


class RatingRecord(_Model):
    quarter: str
    community_id: str
    target_id: str
    responsiveness: int
    quality: int
    attitude: int
    pushed_down: bool
    evidence: str | None
    rated_at: datetime


class EvaluationState(_Model):
    quarter: str
    opened_at: datetime
    closes_at: datetime
    closed: bool = False
    communities: list[CommunityTargets]
    ratings: dict[str, RatingRecord] = {}  # "community|target" -> latest rating
    reminders_sent: list[float] = []

    def pending(self) -> list[str]:
        """Communities with targets not yet rated."""
        return [
            c.community_id
            for c in self.communities
            if any(f"{c.community_id}|{t}" not in self.ratings for t in c.targets)
        ]


class RoundRequest(_Model):
    quarter: str = QUARTER
    opened_at: datetime | None = None
    closes_at: datetime | None = None
