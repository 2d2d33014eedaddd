"""The state of one issue, as the `state` query returns it and continue-as-new carries it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from domain.ladder import LADDER
from schemas.base import DEFAULT_TIMEZONE
from schemas.base import Model as _Model
from schemas.deadline import DeadlineSpec
from schemas.intake import IssueIntake
from schemas.jurisdiction import Level, Policies
from schemas.principal import Actor


AssignmentRole = Literal["lead", "cooperating"]
# handle: a ladder level's; accept / resolve: a department's report-in and resolution; feedback:
# the resident's window; supervise: 督办 after a missed resolve.
DeadlineKind = Literal["handle", "accept", "resolve", "feedback", "supervise"]
# What happened to an issue (IssueEvent.kind; the read model's issue_events.kind).
EventKind = Literal[
    "intake", "escalated", "auto_escalated", "dispatched", "accepted", "declined", "assigned", "resolved",
    "extension_requested", "extension_decided", "urged", "reminder", "deadline_missed", "supervised",
    "report_in_missed",  # rule book 2; book 1 recorded a missed report-in as `escalated` (to arbitration)
    "feedback", "reopened", "review", "feedback_window_closed",
]
PenaltyKind = Literal["handle_overdue", "accept_overdue", "resolve_overdue"]
ExtendableDeadline = Literal["accept", "resolve"]
NotificationKind = Literal[
    "dispatch", "reminder", "overdue", "supervision", "urge", "arbitration", "extension", "extension_decided",
    "reopen", "review", "resolved",  # about an issue
    "evaluation_reminder", "league_draft", "briefing",  # about a round, a table, a month
]


class Stage(StrEnum):
    grid = "grid"
    community = "community"
    area = "area"
    street = "street"
    department = "department"
    arbitration = "arbitration"  # a decline or missed report-in awaits the supervisor
    feedback = "feedback"
    review = "review"  # supervisor review after repeated dissatisfaction
    closed = "closed"


LADDER_STAGES = tuple(Stage(level.value) for level in LADDER)  # the stages named after the ladder's levels


class Outcome(StrEnum):
    satisfied = "satisfied"
    no_feedback = "no_feedback"
    closed_by_review = "closed_by_review"


class AssignmentStatus(StrEnum):
    pending = "pending"  # awaiting report-in
    accepted = "accepted"
    resolved = "resolved"
    declined = "declined"  # awaiting arbitration
    escalated = "escalated"  # missed report-in, awaiting the supervisor
    withdrawn = "withdrawn"  # replaced after arbitration


class IssueContext(_Model):
    """Facts fixed at intake by an activity and kept in history: routing, the unit chain,
    and the policies in force, so later configuration changes never alter a running issue."""

    chain: dict[Level, str]
    lead_department: str
    cooperating_departments: list[str] = []
    departments: list[str]
    duties: dict[Level, str] = Field(default_factory=dict, description="level -> statutory|assistance|negative")
    policies: Policies
    category_urgent: bool = False
    # The jurisdiction's time zone, for the times the workflow writes for people (the Web UI's
    # summaries). Contexts recorded before it was kept read the default.
    timezone: str = DEFAULT_TIMEZONE

    @model_validator(mode="before")
    @classmethod
    def _without_owning_level(cls, data: Any) -> Any:
        """Contexts recorded before it was dropped (in history, carried states, read-model
        snapshots) name the category's owning level, which nothing read: the ladder and the
        duty list decide where an issue goes."""
        if isinstance(data, dict) and "owning_level" in data:
            data = {k: v for k, v in data.items() if k != "owning_level"}
        return data


class Extension(_Model):
    deadline: ExtendableDeadline
    extend_by: DeadlineSpec
    reason: str
    requested_by: str
    requested_at: datetime
    approved: bool | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str = ""


class Assignment(_Model):
    department_id: str
    role: AssignmentRole
    round: int
    status: AssignmentStatus
    cycle: int = 1  # the dispatch it belongs to (see IssueState.cycle)
    assigned_at: datetime
    urgent: bool = False
    accept_due: datetime | None = None
    resolve_due: datetime | None = None
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    summary: str | None = None
    decline_reason: str | None = None
    extensions: list[Extension] = []

    @property
    def key(self) -> str:
        return f"{self.department_id}:{self.round}"

    def pending_extension(self) -> Extension | None:
        return next((e for e in self.extensions if e.approved is None), None)


class Deadline(_Model):
    """A running clock against a unit. `key` is unique within the issue."""

    key: str
    kind: DeadlineKind
    unit_id: str
    started_at: datetime
    due_at: datetime
    reminders: list[float] = []
    reminders_sent: list[float] = []
    open: bool = True
    missed: bool = False

    def reminder_at(self, fraction: float) -> datetime:
        return self.started_at + (self.due_at - self.started_at) * fraction


class Penalty(_Model):
    deadline_key: str
    unit_id: str
    kind: PenaltyKind
    due_at: datetime
    recorded_at: datetime


class Reminder(_Model):
    deadline_key: str
    unit_id: str
    fraction: float
    at: datetime


class IssueEvent(_Model):
    seq: int
    at: datetime
    kind: EventKind
    stage_from: Stage | None = None
    stage_to: Stage | None = None
    unit_id: str | None = None
    actor: Actor | None = None
    detail: dict[str, Any] = {}


class IssueState(_Model):
    issue_id: str
    workflow_id: str
    channel: str
    reference: str
    category: str
    grid_id: str
    description: str
    address: str | None = None
    lat: float | None = None
    long: float | None = None
    has_reporter: bool = False
    urgent: bool = False
    context: IssueContext
    stage: Stage
    owner_unit: str | None = None
    owners: list[str] = []
    overdue: bool = False
    due_at: datetime | None = None
    deadlines: list[Deadline] = []
    assignments: list[Assignment] = []
    penalties: list[Penalty] = []
    reminders: list[Reminder] = []
    urges: int = 0
    reopens: int = 0
    cycle: int = 0  # dispatches, department reopens and review reassignments so far
    reopens_by_unit: dict[str, int] = {}
    resolved_by: list[str] = []
    resolved_stage: Stage | None = None
    resolution: str | None = None
    outcome: Outcome | None = None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    # The last event's number. The events themselves live in Temporal's history (each one in
    # its read-model write) and in the read model's `issue_events`, not here: every update
    # returned them and every cached workflow kept them in memory.
    seq: int = 0
    runs: int = 1  # continue-as-new count + 1
    # The rule book (domain/authority.py) the issue was registered under: fixed for its life,
    # like its policies, so a running issue's accepted actions stay accepted on replay.
    rulebook: int = 1

    @model_validator(mode="before")
    @classmethod
    def _without_history(cls, data: Any) -> Any:
        """A state carried by continue-as-new from a run before the events left it still holds
        them: their last number is all it keeps."""
        if isinstance(data, dict) and "history" in data:
            data = dict(data)
            history = data.pop("history") or []
            if history and "seq" not in data:
                last = history[-1]
                data["seq"] = last["seq"] if isinstance(last, dict) else last.seq
        return data

    @classmethod
    def registered(cls, intake: IssueIntake, context: IssueContext, at: datetime, rulebook: int) -> "IssueState":
        """A new issue at the grid, as its intake and the context resolved for it describe it.
        The reporter's contact stays in the intake (personal data, never in the state)."""
        return cls(
            issue_id=intake.issue_id, workflow_id=intake.workflow_id, channel=intake.channel.value,
            reference=intake.reference, category=intake.category, grid_id=intake.grid_id,
            description=intake.description, address=intake.address, lat=intake.lat, long=intake.long,
            has_reporter=intake.reporter is not None, urgent=intake.urgent or context.category_urgent,
            context=context, stage=Stage.grid, created_at=intake.reported_at or at, updated_at=at,
            rulebook=rulebook,
        )

    def open_assignments(self) -> list[Assignment]:
        return [a for a in self.assignments if a.status not in (AssignmentStatus.withdrawn, AssignmentStatus.resolved)]

    def live_assignments(self) -> list[Assignment]:
        return [a for a in self.assignments if a.status != AssignmentStatus.withdrawn]

    def assignment(self, department_id: str) -> Assignment | None:
        """The department's current (latest, not withdrawn) assignment."""
        for a in reversed(self.assignments):
            if a.department_id == department_id and a.status != AssignmentStatus.withdrawn:
                return a
        return None


class IssueWorkflowInput(_Model):
    intake: IssueIntake
    carried: IssueState | None = None
    # Continue-as-new after this many history events (None: when the server suggests it).
    max_history_events: int | None = Field(default=None, ge=20)


class TransitionRecord(_Model):
    """What the read-model activity writes for one transition."""

    event: IssueEvent
    state: IssueState


class Notification(_Model):
    """What the notifier sends (the webhook's JSON body, docs/notifications.md). The workflow
    gives the kind and its facts; the notify activity renders `text` from them."""

    version: int = 3  # of the body: 2 added facts and text; 3 added subject, and issue_id only for an issue
    kind: NotificationKind
    # What it is about: an issue's id, or a round, a table or a month (`evaluation-2026Q3`,
    # `league-2026Q3`, `briefing-2026-10`); `issue_id` only when it is an issue.
    subject: str
    issue_id: str | None = None
    unit_id: str
    message: str
    deadline_key: str | None = None
    at: datetime
    # The issue's event it follows. A workflow task that fails after sending is retried at a
    # later `at`; the seq stays, so receivers can drop the duplicate.
    seq: int | None = None
    facts: dict[str, Any] = {}  # the kind's facts (times as ISO-8601), never personal data
    text: str | None = None  # in Chinese, with local times (activities/templates.py)

    @model_validator(mode="before")
    @classmethod
    def _subject_of_version_2(cls, data: Any) -> Any:
        """A notification scheduled by earlier code (an activity's input, retried after an
        upgrade) named its subject `issue_id`, whatever it was about."""
        if isinstance(data, dict) and "subject" not in data and data.get("issue_id"):
            data = dict(data)
            data["subject"] = data["issue_id"]
            if str(data["subject"]).startswith(("evaluation-", "league-", "briefing-")):
                data["issue_id"] = None
        return data


class ContextRequest(_Model):
    category: str
    grid_id: str


class DeadlineRequest(_Model):
    start: datetime
    spec: DeadlineSpec
    # `start` is a deadline being extended, not a moment of receipt (WorkingCalendar.extend).
    extends: bool = False
