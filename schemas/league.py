"""The red/black list (红黑榜): metrics per department and street, composite score, lists."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from schemas.base import Model as _Model
from schemas.deadline import DeadlineSpec
from schemas.period import PERIOD_PATTERN
from schemas.principal import Actor
from schemas.text import RefusesNul

METRICS = ("satisfaction", "evaluation", "on_time_accept", "on_time_resolve", "low_reopen", "low_penalty")
# The rates each published row carries with numerator, denominator and Wilson interval.
RATES = ("on_time_accept", "on_time_resolve", "satisfaction", "reopen_rate", "penalty_rate", "evaluation")
INSUFFICIENT = "样本不足"

# Weights of the normalised metrics (each 0..1, higher is better).
PRESETS: dict[str, dict[str, float]] = {
    # Pudong's "7+3": residents' and communities' view 70%, the street's (operational) view 30%.
    "7+3": {"satisfaction": 0.35, "evaluation": 0.35, "on_time_accept": 0.10, "on_time_resolve": 0.10,
            "low_reopen": 0.05, "low_penalty": 0.05},
    # Xuhui's "631": residents' evaluation 60%, basic work 30%, distinctive work 10%.
    "6-3-1": {"satisfaction": 0.30, "evaluation": 0.30, "on_time_accept": 0.15, "on_time_resolve": 0.15,
              "low_reopen": 0.05, "low_penalty": 0.05},
}


class NoAnswer(StrEnum):
    publish = "publish"  # the draft is published as it stands
    hold = "hold"  # it waits for the supervisor, who is reminded


class LeaguePolicy(_Model):
    preset: str = "7+3"
    weights: dict[str, float] | None = None  # overrides the preset
    red_size: int = Field(default=3, ge=0)
    black_size: int = Field(default=3, ge=0)
    # Hard rules: at least this many penalties in the period, and at least this many per issue
    # of the unit's volume, put a unit on the black list. The share keeps a large unit's few
    # misses from listing it: 5 penalties on 300 issues is not 5 on 6.
    black_if_penalties_at_least: int | None = Field(default=5, ge=1)
    black_if_penalties_per_issue_at_least: float = Field(default=0.2, ge=0)
    black_if_pushed_down_at_least: int | None = Field(default=2, ge=1)
    # Below this many issues in the period a unit is shown as 样本不足: not ranked, not listed by
    # score (the hard rules above still list it).
    min_volume: int = Field(default=10, ge=1)
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


class Rate(_Model):
    """A rate as published: numerator ÷ denominator, with its 95% Wilson interval."""

    value: float | None
    numerator: int
    denominator: int
    interval: tuple[float, float] | None = None


class LeagueRow(_Model):
    unit_id: str
    unit_kind: Literal["department", "street"]
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
    penalty_rate: float | None = None
    rates: dict[str, Rate] = {}
    score_interval: tuple[float, float] | None = None
    ranked: bool = True  # False: fewer issues than league.min_volume (样本不足)
    rank: int = 0  # 1 = best among the ranked; 0 when not ranked
    listed: str | None = None  # red | black
    reasons: list[str] = []


class AdjustmentKind(StrEnum):
    exclude_issue = "exclude_issue"  # the issue leaves the unit's figures (e.g. arbitration: not theirs)
    void_rating = "void_rating"  # a community's rating of the unit no longer counts (e.g. retaliatory)
    correct_rating = "correct_rating"  # a community's rating of the unit counts with corrected values


class Adjustment(_Model, RefusesNul):
    """One change a supervisor asks of the next draft, with the reason it is made."""

    kind: AdjustmentKind
    unit_id: str = Field(min_length=1, max_length=64, description="the department or street whose figures change")
    reason: str = Field(min_length=1, max_length=1000)
    issue_id: str | None = Field(default=None, max_length=200)  # exclude_issue
    community_id: str | None = Field(default=None, max_length=64)  # void_rating, correct_rating
    quarter: str | None = Field(default=None, pattern=r"^\d{4}Q[1-4]$")  # a rating's quarter (default: all in the period)
    responsiveness: int | None = Field(default=None, ge=1, le=5)  # correct_rating
    quality: int | None = Field(default=None, ge=1, le=5)
    attitude: int | None = Field(default=None, ge=1, le=5)
    pushed_down: bool | None = None

    @model_validator(mode="after")
    def _fields(self) -> "Adjustment":
        if not self.reason.strip():
            raise ValueError("an adjustment needs a reason")
        if self.kind == AdjustmentKind.exclude_issue and not self.issue_id:
            raise ValueError("exclude_issue needs issue_id")
        if self.kind != AdjustmentKind.exclude_issue and not self.community_id:
            raise ValueError(f"{self.kind.value} needs community_id (whose rating)")
        scores = (self.responsiveness, self.quality, self.attitude)
        if self.kind == AdjustmentKind.correct_rating and None in scores:
            raise ValueError("correct_rating needs responsiveness, quality and attitude")
        if self.kind != AdjustmentKind.correct_rating and (any(v is not None for v in scores) or self.pushed_down is not None):
            raise ValueError(f"{self.kind.value} takes no rating values")
        return self


class AppliedAdjustment(Adjustment):
    """An adjustment as the list records it: who asked for it, on which draft, when."""

    by: str
    draft: int
    at: datetime


class Change(_Model):
    """What differs between a draft and the one before it, for one unit."""

    unit_id: str
    unit_kind: Literal["department", "street"]
    field: str
    before: float | int | str | None
    after: float | int | str | None


class LeagueTable(_Model):
    period: str
    status: str  # draft | published
    weights: dict[str, float]
    computed_at: datetime
    rows: list[LeagueRow]
    comments: list[str] = []
    published_at: datetime | None = None
    draft: int = 1
    min_volume: int | None = None
    adjustments: list[AppliedAdjustment] = []
    changes: list[Change] = []  # against the previous draft


class PublishedLeague(_Model):
    """The red/black list as `GET /v1/league/{period}` serves it."""

    period: str
    status: str
    weights: dict[str, float]
    comments: list[str] = []
    computed_at: datetime
    published_at: datetime | None = None
    draft: int = 1
    min_volume: int | None = None
    adjustments: list[AppliedAdjustment] = []
    changes: list[Change] = []
    departments: list[LeagueRow]
    streets: list[LeagueRow]


class DraftDecision(StrEnum):
    approve = "approve"
    send_back = "send_back"


class ReviewDraft(_Model, RefusesNul):
    actor: Actor
    decision: DraftDecision
    comments: str = Field(default="", max_length=2000)
    adjustments: list[Adjustment] = Field(default=[], max_length=200)

    @model_validator(mode="after")
    def _why(self) -> "ReviewDraft":
        if self.decision == DraftDecision.send_back and not self.comments.strip():
            raise ValueError("send_back needs comments")
        if self.decision == DraftDecision.approve and self.adjustments:
            raise ValueError("adjustments come with send_back: the next draft applies them")
        return self


class LeagueState(_Model):
    period: str
    stage: Literal["waiting", "draft", "published"]
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
    black_if_penalties_per_issue_at_least: float = 0.0  # 0: the count alone (runs begun before the share)
    comments: list[str] = []
    min_volume: int | None = None  # None: every unit is ranked
    adjustments: list[AppliedAdjustment] = []
    draft: int = 1
    previous: list[LeagueRow] | None = None  # the previous draft's rows: the new one says what changed


class PeriodRequest(_Model):
    period: str = Field(pattern=PERIOD_PATTERN)


class Announcement(_Model):
    period: str
    webhook: str
    table: LeagueTable
