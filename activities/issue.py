"""Activities of IssueWorkflow. Each is idempotent: a retry writes nothing twice."""

from __future__ import annotations

import time
from datetime import datetime

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.notifier import Notifier
from activities.templates import render
from schemas.issue import ContextRequest, DeadlineRequest, IssueContext, Notification, Stage, TransitionRecord
from schemas.jurisdiction import LADDER, Jurisdiction, Level
from whistle import metrics
from whistle.db import queries, rows
from whistle.workdays import WorkingCalendar

log = structlog.get_logger(__name__)


class Outage:
    """One log line when a backing service starts refusing, one when it takes work again, and
    nothing for the attempts in between (a 30 s PostgreSQL outage used to log 800 tracebacks)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.since: float | None = None
        self.failures = 0

    def failed(self, err: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            log.warning(f"{self.service}.unavailable", error=type(err).__name__, detail=str(err)[:200])

    def recovered(self) -> None:
        if self.since is not None:
            log.warning(f"{self.service}.recovered", after_s=round(time.monotonic() - self.since, 1),
                        failed_attempts=self.failures)
            self.since, self.failures = None, 0


class IssueActivities:
    def __init__(self, jurisdiction: Jurisdiction, pool: asyncpg.Pool, notifier: Notifier):
        self.jurisdiction = jurisdiction
        self.calendar = WorkingCalendar(jurisdiction.calendar, jurisdiction.timezone)
        self.pool = pool
        self.notifier = notifier
        self.outage = Outage("read_model")

    @activity.defn
    async def resolve_issue_context(self, request: ContextRequest) -> IssueContext:
        """Routing facts of the issue, from the jurisdiction in force now."""
        j = self.jurisdiction
        try:
            category = j.category(request.category)
        except KeyError:
            raise ApplicationError(f"unknown category {request.category!r}", type="UnknownCategory", non_retryable=True)
        try:
            grid = j.unit(request.grid_id)
        except KeyError:
            grid = None
        if grid is None or grid.level != Level.grid:
            raise ApplicationError(f"unknown grid {request.grid_id!r}", type="UnknownGrid", non_retryable=True)
        duties: dict[Level, str] = {}
        for level in LADDER:
            # The first kind that lists the category wins: a statutory duty stays a duty.
            kind = next((k for k in ("statutory", "assistance", "negative") if j.is_duty(level, category.id, k)), None)
            if kind:
                duties[level] = kind
        return IssueContext(
            chain={k: v for k, v in j.chain(grid.id).items() if k in LADDER},
            timezone=j.timezone,
            lead_department=category.lead_department,
            cooperating_departments=list(category.cooperating_departments),
            departments=[d.id for d in j.departments],
            duties=duties,
            policies=j.policies,
            category_urgent=category.urgent,
        )

    @activity.defn
    async def compute_deadline(self, request: DeadlineRequest) -> datetime:
        if request.extends:
            return self.calendar.extend(request.start, request.spec)
        return self.calendar.deadline(request.start, request.spec)

    @activity.defn
    async def record_transition(self, record: TransitionRecord) -> None:
        """Event, snapshot, assignments and penalties in one transaction; replays are no-ops.
        While PostgreSQL refuses, each attempt fails as a benign error (the SDK logs those at
        DEBUG, not a traceback per attempt) and the outage is logged once when it starts and
        once when it ends."""
        s, e = record.state, record.event
        if activity.info().attempt > 1:
            metrics.READ_MODEL_RETRIES.labels("record_transition").inc()
        try:
            inserted = await self._write_transition(s, e)
        except Exception as exc:
            metrics.READ_MODEL_FAILURES.labels("record_transition", type(exc).__name__).inc()
            if not isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                raise
            self.outage.failed(exc)
            raise ApplicationError(
                f"the read model refused the write: {type(exc).__name__}", type="ReadModelUnavailable",
                category=ApplicationErrorCategory.BENIGN,
            ) from None
        self.outage.recovered()
        if inserted:  # counted once per event, however often the write is retried
            record_transition_metrics(record)

    async def _write_transition(self, s, e) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(queries.INSERT_EVENT, *rows.event_row(s, e))
            await conn.execute(queries.UPSERT_ISSUE, *rows.issue_row(s, e))
            await conn.executemany(queries.UPSERT_ASSIGNMENT, rows.assignment_rows(s, e))
            await conn.executemany(queries.INSERT_PENALTY, rows.penalty_rows(s))
            if s.stage == Stage.closed:  # the last write of the issue: nothing after it happened
                await conn.execute(queries.DELETE_EVENTS_AFTER, s.issue_id, e.seq)
        return bool(inserted)

    @activity.defn
    async def notify(self, notification: Notification) -> None:
        notification = notification.model_copy(update={"text": render(notification, self.calendar.tz)})
        try:
            await self.notifier.send(notification)
        except Exception:
            metrics.NOTIFICATIONS_FAILED.labels(notification.kind).inc()
            raise
        metrics.NOTIFICATIONS_SENT.labels(notification.kind).inc()

    def all(self) -> list:
        return [self.resolve_issue_context, self.compute_deadline, self.record_transition, self.notify]


def record_transition_metrics(record: TransitionRecord) -> None:
    """Business metrics of one newly recorded event (the activity runs once per event; workflow
    code never records, since it replays)."""
    s, e = record.state, record.event
    metrics.TRANSITIONS.labels(e.kind).inc()
    if e.kind == "intake":
        metrics.ISSUES_OPENED.labels(s.channel, s.category).inc()
    if e.stage_to == Stage.closed and e.stage_from != Stage.closed:
        metrics.ISSUES_CLOSED.labels(s.channel, s.category, s.outcome.value if s.outcome else "").inc()
    late = lateness(record)
    if late is not None:
        metrics.DEADLINE_LATENESS.labels("reminder" if e.kind == "reminder" else "deadline").observe(late)
    if e.kind == "deadline_missed" and e.detail.get("penalty"):
        metrics.PENALTIES.labels(e.unit_id or "", f"{e.detail.get('kind', '')}_overdue").inc()


def lateness(record: TransitionRecord) -> float | None:
    """Seconds between a timer's due time and the event that acted on it: a missed deadline's
    due time, or a reminder's (its fraction of the way to the deadline). None for other events."""
    e = record.event
    if e.kind not in ("deadline_missed", "reminder", "feedback_window_closed"):
        return None
    key = e.detail.get("deadline")
    deadline = next((d for d in record.state.deadlines if d.key == key), None)
    if deadline is None:
        return None
    due = deadline.reminder_at(e.detail["fraction"]) if e.kind == "reminder" else deadline.due_at
    return max(0.0, (e.at - due).total_seconds())
