"""The red/black list (红黑榜): metrics per department and street, composite score, lists."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.deadline import DeadlineSpec
from schemas.period import PERIOD_PATTERN
from schemas.principal import Actor
from schemas.text import RefusesNul

METRICS = ("satisfaction", "evaluation", "on_time_accept", "on_time_resolve", "low_reopen", "low_penalty")

# Weights of the normalised metrics (each 0..1, higher is better).
PRESETS: dict[str, dict[str, float]] = {
    # Pudong's "7+3": residents' and communities' view 70%, the street's (operational) view 30%.
    "7+3": {"satisfaction": 0.35, "evaluation": 0.35, "on_time_accept": 0.10, "on_time_resolve": 0.10,
            "low_reopen": 0.05, "low_penalty": 0.05},
    # Xuhui's "631": residents' evaluation 60%, basic work 30%, distinctive work 10%.
    "6-3-1": {"satisfaction": 0.30, "evaluation": 0.30, "on_time_accept": 0.15, "on_time_resolve": 0.15,
              "low_reopen": 0.05, "low_penalty": 0.05},
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

class NoAnswer(StrEnum):
    publish = "publish"  # the draft is published as it stands
    hold = "hold"  # it waits for the supervisor, who is reminded


class LeaguePolicy(_Model):
    preset: str = "7+3"
    weights: dict[str, float] | None = None  # overrides the preset
    red_size: int = Field(default=3, ge=0)
    black_size: int = Field(default=3, ge=0)
    # Hard rules: at least this many penalties in the period puts a unit on the black list.
    black_if_penalties_at_least: int | None = Field(default=5, ge=1)
    black_if_pushed_down_at_least: int | None = Field(default=2, ge=1)
    approval_deadline: DeadlineSpec = DeadlineSpec(working_days=3)
    on_no_answer: NoAnswer = NoAnswer.publish
    webhook: str | None = None
    # How often the league table looks again whether the evaluation round has closed.
    poll_every: DeadlineSpec = DeadlineSpec(duration="PT6H")  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _weights(self) -> "LeaguePolicy":
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        for name, w in (self.weights or {}).items():
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r} in weights; known: {', '.join(METRICS)}")
            if w < 0:
                raise ValueError("weights must not be negative")
        if self.weights is not None and sum(self.weights.values()) <= 0:
            raise ValueError("weights must not all be zero")
        return self

    def resolved_weights(self) -> dict[str, float]:
        base = dict(PRESETS[self.preset])
        if self.weights:
            base = {m: self.weights.get(m, 0.0) for m in METRICS}
        return base


class LeagueInput(_Model):
    period: str = Field(pattern=PERIOD_PATTERN)
    policy: LeaguePolicy | None = None  # default: the jurisdiction's


class LeagueRow(_Model):
    unit_id: str
    unit_kind: str  # department | street
    name: str = ""
    volume: int
    on_time_accept: float | None
    on_time_resolve: float | None
    satisfaction: float | None
    reopen_rate: float | None
    penalties: int
    evaluation: float | None
    pushed_down: int
    score: float
    rank: int = 0
    listed: str | None = None  # red | black
    reasons: list[str] = []


class LeagueTable(_Model):
    period: str
    status: str  # draft | published
    weights: dict[str, float]
    computed_at: datetime
    rows: list[LeagueRow]
    comments: list[str] = []
    published_at: datetime | None = None


class DraftDecision(StrEnum):
    approve = "approve"
    send_back = "send_back"


class ReviewDraft(_Model, RefusesNul):
    actor: Actor
    decision: DraftDecision
    comments: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _why(self) -> "ReviewDraft":
        if self.decision == DraftDecision.send_back and not self.comments.strip():
            raise ValueError("send_back needs comments")
        return self


class LeagueState(_Model):
    period: str
    stage: str  # waiting | draft | published
    policy: LeaguePolicy
    table: LeagueTable | None = None
    drafts: int = 0
    decision_due: datetime | None = None
    history: list[str] = []


class ComputeRequest(_Model):
    period: str
    weights: dict[str, float]
    red_size: int
    black_size: int
    black_if_penalties_at_least: int | None
    black_if_pushed_down_at_least: int | None
    comments: list[str] = []


class PeriodRequest(_Model):
    period: str = Field(pattern=PERIOD_PATTERN)


class Announcement(_Model):
    period: str
    webhook: str
    table: LeagueTable
