"""The intake service: what turns a request from /v1 or Open311 into a registered issue. It
validates what the workflow would refuse (category, location, the category's attributes),
moves contact details typed into the text to the encrypted reporter, starts the workflow once
per (channel, reference) with the update that answers once it has registered (no polling), and
delivers the feedback token to the reporter's contact as the workflow recorded it. The routes
only read the request and answer."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from temporalio.client import (WorkflowFailureError, WorkflowQueryFailedError,
                              WorkflowUpdateRPCTimeoutOrCancelledError)
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Deps
from api.errors import ApiError, validation_detail
from api.scope import check_submission, in_scope, sees_reporter
from api.views import IntakeRequest
from domain.authority import someone_to_ask
from schemas.intake import IssueIntake, Reporter
from schemas.issue import IssueState
from schemas.principal import Principal, Role
from whistle.attest import foreign_start
from whistle.intake import separate_contacts, submit_issue
from whistle.locate import LocationError
from whistle.tokens import feedback_token
from workflows.issue import IssueWorkflow

log = structlog.get_logger("whistle.api")

# Who may submit: intake services for residents, and the units and the supervisor for what they find.
SUBMITTERS = (Role.intake, Role.grid, Role.community, Role.area, Role.street, Role.supervisor)
# A query waits for the workflow's task; one whose task keeps failing never answers.
QUERY_TIMEOUT = timedelta(seconds=5)
UNREADABLE = (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)


async def submit(
    d: Deps, p: Principal, intake: IssueIntake, deliver: bool
) -> tuple[bool, IssueState, str | None, Reporter | None]:
    """Start the issue, or find the one already made for its (channel, reference): whether it
    was created, its registered state, the feedback token an intake service hands to its
    resident (None for anyone else, and when there is nobody to ask), and the reporter's contact
    as the workflow recorded it when the caller may see it (api.scope.sees_reporter). When
    `deliver` (an issue a unit or the supervisor enters; any issue from Open311, whose clients
    cannot pass a token on), the token goes to that contact instead."""
    check_submission(p, intake.channel.value, intake.grid_id, d.jurisdiction)
    try:
        handle, created, s = await asyncio.wait_for(
            submit_issue(d.client, intake, d.task_queue, jurisdiction=d.jurisdiction), d.register_timeout)
    except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # No worker registered it in time (none running, or the read model is down and the
        # registration waits for its write), or the call never reached Temporal.
        raise ApiError(503, "the issue's registration did not finish in time: submit it again (the same channel "
                            "and reference never make a second issue) or read it shortly",
                       headers={"Retry-After": "5"}) from None
    except WorkflowFailureError as err:  # the worker's jurisdiction refused what the API's accepted
        raise ApiError(422, f"the issue was refused: {getattr(err.cause, 'message', err.cause)}") from None
    if s is None:  # it existed already, or a worker older than the register update runs it: read it
        s = await wait_registered(handle, d.client)
    if not created and not in_scope(p, s):
        # The same (channel, reference) as an issue this key may not read: say nothing more.
        raise ApiError(409, "an issue with this channel and reference exists already")
    token = feedback_token(d.token_secret, intake.issue_id) if someone_to_ask(s) else None
    delivering, shown = deliver and token is not None, sees_reporter(p, s)
    reporter = None
    if s.has_reporter and (delivering or shown):  # personal data: read only when needed
        reporter = await handle.query(IssueWorkflow.reporter, rpc_timeout=QUERY_TIMEOUT)
    if delivering and reporter is not None:
        await deliver_token(d, s.issue_id, reporter, token)
    return created, s, token if p.role == Role.intake else None, reporter if shown else None


def to_intake(d: Deps, body: IntakeRequest, **extra: Any) -> IssueIntake:
    """Validate what the workflow would refuse: category, location, the category's attributes."""
    try:
        category = d.jurisdiction.category(body.category)
    except KeyError:
        raise ApiError(422, "invalid input", [{"field": "category", "message": f"unknown category {body.category!r}"}]) from None
    try:
        grid_id = d.locator.grid_for(body.grid_id, body.lat, body.long, body.address)
    except LocationError as exc:
        raise ApiError(422, "invalid input", [{"field": "location", "message": str(exc)}]) from None
    problems = []
    declared = {a.code: a for a in category.attributes}
    for code, value in body.attributes.items():
        if code not in declared:
            problems.append({"field": f"attributes.{code}", "message": f"category {category.id} has no attribute {code!r}"})
        elif declared[code].values and value not in declared[code].values and declared[code].datatype == "singlevaluelist":
            problems.append({"field": f"attributes.{code}", "message": f"must be one of {declared[code].values}"})
    for code, a in declared.items():
        if a.required and code not in body.attributes:
            problems.append({"field": f"attributes.{code}", "message": "required by this category"})
    if problems:
        raise ApiError(422, "invalid input", problems)
    # Phone numbers and e-mail addresses typed into the text join the reporter's contact
    # (encrypted, shown only to those who may call back); the text keeps a placeholder.
    description, address, reporter = separate_contacts(body.description, body.address, body.reporter)
    data = body.model_dump(exclude={"grid_id"}) | {
        "grid_id": grid_id, "description": description, "address": address,
        "reporter": reporter.model_dump() if reporter else None,
    } | extra
    try:
        return IssueIntake.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid input", validation_detail(exc.errors())) from None


async def wait_registered(handle, client, attempts: int = 100) -> IssueState:
    """The state of an issue that submit_issue did not return: one that existed already (one
    query; polled while a racing first submission registers it), or one a worker older than the
    register update runs (a rolling upgrade). A run under the id that whistle did not start never
    registers: 409, saying so."""
    for _ in range(attempts):
        try:
            return await handle.query(IssueWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
        except WorkflowQueryFailedError:
            await asyncio.sleep(0.05)
        except RPCError as err:
            if err.status in UNREADABLE:  # e.g. started by hand without the keyring: it never runs
                await refuse_foreign_run(client, handle.id, 409, "an issue with this channel and reference exists")
                raise ApiError(503, "an issue with this channel and reference exists but does not answer",
                               headers={"Retry-After": "30"}) from None
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.05)
    await refuse_foreign_run(client, handle.id, 409, "an issue with this channel and reference exists")
    raise ApiError(503, "the issue was accepted but is not registered yet; read it again shortly")


async def deliver_token(d: Deps, issue_id: str, reporter: Reporter, token: str) -> None:
    """The feedback token, through the notifier, to the reporter's contact as the workflow
    recorded it at the first intake: a resubmission's body names no recipient (it could name
    anyone's phone). Sent again on each resubmission (the webhook's Idempotency-Key lets the
    gateway drop repeats), so a failed delivery is retried by resubmitting; a failure never fails
    the intake, which is done."""
    try:
        await d.notifier.send_feedback_token(issue_id, reporter, token)
    except Exception as exc:  # the gateway is down: the issue stands, the resident waits
        log.warning("feedback_token.delivery_failed", issue_id=issue_id, error=type(exc).__name__)


async def refuse_foreign_run(client, workflow_id: str, status: int, what: str) -> None:
    """When the run under an issue's id never answers: if whistle did not start it (its start is
    not attested, whistle.attest), say so, and log it for ops, instead of "try again later"."""
    reason = await foreign_start(client, workflow_id)
    if reason is not None:
        log.warning("issue.foreign_run", workflow_id=workflow_id, reason=reason)
        raise ApiError(status, f"{what}: the workflow under its id ({workflow_id}) was started outside whistle "
                               f"({reason}) and never runs; ops must terminate it (see docs/security.md)",
                       {"workflow_id": workflow_id})
