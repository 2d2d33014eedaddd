"""/v1: intake, issues, actions, categories and units."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, Security
from fastapi.security import APIKeyHeader
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from api import intake as intake_service
from api.bodies import with_actor, without_actor
from api.deps import AppDeps, Deps
from api.errors import ApiError, validation_detail
from api.guard import API_KEY_HEADER, PUBLIC, CurrentPrincipal, api_key_header, check_address, identify, limited, require_role
from api.intake import QUERY_TIMEOUT, SUBMITTERS, UNREADABLE, refuse_foreign_run, to_intake
from api.scope import in_scope, known_unit, sees_reporter
from api.updates import IDEMPOTENCY_KEY_HEADER, run_update, update_id_for
from api.views import EventView, IntakeRequest, IntakeResponse, IssueList, IssueRow, IssueView, issue_view
from domain.authority import someone_to_ask
from schemas.actions import (Accept, Assign, DecideExtension, Decline, Dispatch, Escalate, Feedback,
                             RequestExtension, Resolve, Review, Urge)
from schemas.intake import workflow_id_for
from schemas.issue import IssueState
from schemas.principal import UNIT_ROLES, Actor, Principal, Role
from whistle.db import queries
from whistle.tokens import check_feedback_token
from workflows.issue import IssueWorkflow

router = APIRouter(prefix="/v1", tags=["issues"])

ACTIONS = {
    "accept": Accept, "resolve": Resolve, "escalate": Escalate, "dispatch": Dispatch, "decline": Decline,
    "request_extension": RequestExtension, "decide_extension": DecideExtension, "assign": Assign,
    "urge": Urge, "feedback": Feedback, "review": Review,
}
FEEDBACK_TOKEN_HEADER = "X-Feedback-Token"
feedback_token_header = APIKeyHeader(
    name=FEEDBACK_TOKEN_HEADER, scheme_name="FeedbackToken", auto_error=False,
    description="a resident's feedback token (the feedback action only, instead of an API key)",
)


# ---------------------------------------------------------------------------------- scope
async def view(handle, p: Principal | None, s: IssueState) -> IssueView:
    reporter = await handle.query(IssueWorkflow.reporter) if s.has_reporter and sees_reporter(p, s) else None
    return issue_view(s, reporter)


async def fetch_state(d: Deps, issue_id: str):
    handle = d.client.get_workflow_handle_for(IssueWorkflow.run, workflow_id_for(issue_id))
    try:
        return handle, await handle.query(IssueWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
    except WorkflowQueryFailedError:
        if (await handle.describe()).status == WorkflowExecutionStatus.FAILED:  # refused before registering
            raise ApiError(404, f"no issue {issue_id!r}: its intake was refused") from None
        raise  # a workflow task failing or still registering: 503 (api.errors.temporal_trouble)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise not_found(issue_id) from None
        if err.status in UNREADABLE:  # its workflow task keeps failing, or no worker answers
            await refuse_foreign_run(d.client, handle.id, 503, f"issue {issue_id!r} cannot be read")
            raise ApiError(503, f"issue {issue_id!r} cannot be read now: its workflow does not answer",
                           headers={"Retry-After": "30"}) from None
        raise


def not_found(issue_id: str) -> ApiError:
    """No such issue, and also an issue outside the caller's scope: the same answer for both, so
    that a key cannot learn which issues exist outside its part of the district."""
    return ApiError(404, f"no issue {issue_id!r}")



# ---------------------------------------------------------------------------------- intake
@router.post("/issues", response_model=IntakeResponse, status_code=201, responses={200: {"model": IntakeResponse}})
async def submit(d: AppDeps, p: CurrentPrincipal, response: Response, body: IntakeRequest) -> IntakeResponse:
    """Create the issue (201), or return the one already made for this (channel, reference) (200).
    The feedback token is in the answer only for intake services, who act for residents; for an
    issue a handler or the supervisor enters, it goes to the reporter's contact recorded with the
    issue (never one a resubmission gives). An issue with nobody to ask has no token at all."""
    require_role(p, *SUBMITTERS)
    intake = to_intake(d, body)
    created, s, token, reporter = await intake_service.submit(d, p, intake, deliver=p.role != Role.intake)
    response.status_code = 201 if created else 200
    return IntakeResponse(issue_id=intake.issue_id, workflow_id=intake.workflow_id, created=created,
                          feedback_token=token, issue=issue_view(s, reporter))



# ---------------------------------------------------------------------------------- reads
@router.get("/issues/{issue_id}", response_model=IssueView)
async def show(d: AppDeps, p: CurrentPrincipal, issue_id: str) -> IssueView:
    handle, s = await fetch_state(d, issue_id)
    if not in_scope(p, s):
        raise not_found(issue_id)
    return await view(handle, p, s)


@router.get("/issues/{issue_id}/events", response_model=list[EventView])
async def events(d: AppDeps, p: CurrentPrincipal, issue_id: str) -> list[EventView]:
    """What happened to the issue, oldest first, from the read model (the workflow keeps only
    their count): every move with who made it, when and why."""
    _, s = await fetch_state(d, issue_id)
    if not in_scope(p, s):
        raise not_found(issue_id)
    async with d.pool.acquire() as conn:
        rows = await conn.fetch(queries.SELECT_EVENTS, s.issue_id)
    return [EventView(**{k: r[k] for k in EventView.model_fields}) for r in rows]


@router.get("/issues", response_model=IssueList)
async def list_issues(
    d: AppDeps,
    p: CurrentPrincipal,
    stage: str | None = Query(None, max_length=32),
    owner: str | None = Query(None, max_length=64),
    overdue: bool | None = None,
    street: str | None = Query(None, max_length=64),
    category: str | None = Query(None, max_length=64),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> IssueList:
    """From the read model, newest first; scoped to what the principal may see."""
    if p.role == Role.resident:
        raise ApiError(403, "residents read their issue with its feedback token")
    scope_unit = p.unit_id if p.role in UNIT_ROLES else None
    scope_channel = p.channel if p.role == Role.intake else None
    args = [stage, owner, overdue, street, category, scope_unit, p.role == Role.department, scope_channel]
    async with d.pool.acquire() as conn:
        rows = await conn.fetch(queries.LIST_ISSUES, *args, limit, offset)
        total = await conn.fetchval(queries.COUNT_ISSUES, *args)
    return IssueList(issues=[IssueRow(**dict(r)) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/categories", dependencies=[Depends(limited)], openapi_extra=PUBLIC)
async def categories(d: AppDeps) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json") for c in d.jurisdiction.categories]


@router.get("/units", dependencies=[Depends(limited)], openapi_extra=PUBLIC)
async def units(d: AppDeps) -> dict[str, Any]:
    j = d.jurisdiction
    return {
        "units": [u.model_dump(mode="json") for u in j.units],
        "departments": [d.model_dump(mode="json") for d in j.departments],
    }


# ---------------------------------------------------------------------------------- actions
BODIES = {name: without_actor(model) for name, model in ACTIONS.items()}


async def act(request: Request, d: Deps, issue_id: str, action: str, body) -> IssueView:
    """Run an IssueWorkflow update for the key's principal (or a resident's feedback token):
    404 outside the principal's scope (as for no issue), 403 for a role the workflow refuses,
    409 with the workflow's reason when not allowed now."""
    token = request.headers.get(FEEDBACK_TOKEN_HEADER)
    if action == "feedback" and token and not request.headers.get(API_KEY_HEADER):
        await check_address(d, request)
        if not check_feedback_token(d.token_secret, issue_id, token):
            raise ApiError(401, "this feedback token is not valid for this issue")
        actor, p = Actor(id=f"resident:{issue_id}", role=Role.resident), None
        _, current = await fetch_state(d, issue_id)
        if not someone_to_ask(current):  # a token made before issues with nobody to ask got none
            raise ApiError(409, "this issue has no reporter to ask: it takes no feedback "
                                "(it closes as no_feedback when its feedback window ends)")
    else:
        p = await identify(d, request, request.headers.get(API_KEY_HEADER))
        actor = p.actor()
        _, current = await fetch_state(d, issue_id)
        if not in_scope(p, current):  # before the workflow's reason: that would tell the stage
            raise not_found(issue_id)
    if action == "urge" and body.unit_id is not None and not known_unit(d.jurisdiction, body.unit_id):
        raise ApiError(422, "invalid input", [{"field": "unit_id", "message": "no such unit or department"}])
    try:
        update = with_actor(ACTIONS[action], body, actor.model_dump())
    except ValidationError as exc:
        raise ApiError(422, "invalid input", validation_detail(exc.errors())) from None
    update_id = update_id_for(request.headers.get(IDEMPOTENCY_KEY_HEADER), actor.id, action, body.model_dump(mode="json"))
    handle, new = await run_update(
        d.client, workflow_id_for(issue_id), action, update, IssueState,
        missing=f"no issue {issue_id!r}", finished="the issue is closed", update_id=update_id,
    )
    return await view(handle, p, new)


def _action_route(name: str, body_model) -> None:
    async def route(
        request: Request, d: AppDeps, issue_id: Annotated[str, Path(max_length=200)], body: body_model  # type: ignore[valid-type]
    ) -> IssueView:
        return await act(request, d, issue_id, name, body)

    route.__name__ = f"action_{name}"
    route.__annotations__["body"] = body_model  # a real type, not this module's postponed string
    extra = " A resident sends it with the header X-Feedback-Token instead of an API key." if name == "feedback" else ""
    # The route reads its credentials itself (an API key, or for feedback a resident's token):
    # these dependencies only declare them in OpenAPI, one security requirement each (either).
    schemes = [Security(api_key_header)] + ([Security(feedback_token_header)] if name == "feedback" else [])
    router.post(
        f"/issues/{{issue_id}}/actions/{name}", response_model=IssueView, name=f"action_{name}",
        summary=f"{name}", description=f"{ACTIONS[name].__doc__ or name}{extra}", dependencies=schemes,
    )(route)


for _name, _body in BODIES.items():
    _action_route(_name, _body)


@router.post("/issues/{issue_id}/actions/{action}", response_model=IssueView, include_in_schema=False)
async def run_action(
    request: Request,
    issue_id: str,
    action: str,
    payload: Annotated[dict[str, Any] | None, Body()] = None,
) -> IssueView:
    """Any other action name: 404 with the list (the known ones have their own routes above)."""
    raise ApiError(404, f"unknown action {action!r}", {"actions": sorted(ACTIONS)})
