"""What the workflows share: activity options, the errors an update refuses with, the
notification activity, the workflow-id check, and deadlines from a spec. Imported by
IssueWorkflow, ReverseEvaluationWorkflow, LeagueTableWorkflow and MonthlyBriefingWorkflow."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.issue import IssueActivities
    from schemas.deadline import DeadlineSpec
    from schemas.issue import DeadlineRequest, Notification
    from schemas.labels import unit_name

LOCAL = {"start_to_close_timeout": timedelta(seconds=10)}
# Read-model writes retry until PostgreSQL is back: nothing is lost while it is down, and a
# write lands within a second or two of its return (a 30 s cap made recovery take ~40 s).
# Retry policies are not part of history: changing them needs no patch.
RECORD = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=1)),
}
NOTIFY = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=20),
}


def forbidden(message: str) -> ApplicationError:
    """This actor may not (the API answers 403)."""
    return ApplicationError(message, type="Forbidden", non_retryable=True)


def not_allowed(message: str) -> ApplicationError:
    """Not in the current state (the API answers 409)."""
    return ApplicationError(message, type="NotAllowed", non_retryable=True)


def require_workflow_id(expected: str, what: str = "") -> None:
    """A workflow's id is its natural key (one issue per intake, one round per quarter): a run
    started under another id would let the same thing be handled twice."""
    if workflow.info().workflow_id != expected:
        raise ApplicationError(f"workflow id must be {expected!r}{what}", type="BadWorkflowId", non_retryable=True)


async def deadline_at(start: datetime, spec: DeadlineSpec, extends: bool = False, what: str = "时限") -> datetime:
    """`spec` after `start` (or, when `extends`, the deadline `start` moved by `spec`). Exact
    durations are arithmetic; working days need the calendar, so they are computed once in a
    local activity and recorded in history."""
    if spec.duration is not None:
        return start + spec.duration
    return await workflow.execute_local_activity_method(
        IssueActivities.compute_deadline, DeadlineRequest(start=start, spec=spec, extends=extends),
        summary=f"{what} {spec}{'（延期）' if extends else ''}", **LOCAL
    )


async def notify(
    kind: str, subject: str, unit_id: str, message: str, deadline_key: str | None = None, *,
    about_issue: bool = False, **facts: Any
) -> None:
    """Send a notification through the pluggable notifier activity; `subject` is the issue
    (`about_issue`), round, table or month it is about; `facts` are what its template renders."""
    await notify_started(kind, subject, unit_id, message, deadline_key, facts=as_facts(facts), about_issue=about_issue)


def as_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """A notification's facts as its template reads them: datetimes as ISO strings."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in facts.items()}


def notify_started(
    kind: str, subject: str, unit_id: str, message: str, deadline_key: str | None = None,
    local: bool = False, seq: int | None = None, facts: dict[str, Any] | None = None, about_issue: bool = False,
):
    """The notification activity, started (as a local activity when `local`); await it when
    it must have been sent. `facts` are what activities/templates.py renders the text from;
    `subject` is an issue's id when `about_issue`, else a round's, a table's or a month's."""
    notification = Notification(kind=kind, subject=subject, issue_id=subject if about_issue else None, unit_id=unit_id, message=message,
                                deadline_key=deadline_key, at=workflow.now(), seq=seq, facts=facts or {})
    start = workflow.start_local_activity_method if local else workflow.start_activity_method
    return start(IssueActivities.notify, notification, summary=f"通知 {kind} → {unit_name(unit_id)}", **NOTIFY)
