"""Open311 GeoReport v2 under /open311/v2/: our categories are its services, our issues its
service requests. Responses in `.json` or `.xml`; errors as the spec gives them:
`[{"code": 400, "description": "..."}]` (`<errors><error>…` in XML).

Publication policy (the requests are public: no key is needed to read them). A service request
shows its category, status, the responsible unit, dates, and a coarse location: the community
and the centre of its grid (a grid is ~400 households), never the address or the coordinates
as given. Free text (description, resolution) only for issues of a public channel (open311,
where the resident submitted for publication) and only after redaction of phone numbers,
ID-card numbers, e-mail addresses and door numbers. Reporters' contacts never appear."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.etree.ElementTree import Element, tostring

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from api.deps import AppDeps, Deps
from api.errors import ApiError, error_field
from api.guard import check_address, identify
from api import intake as intake_service
from api.intake import QUERY_TIMEOUT, SUBMITTERS, to_intake
from api.views import IntakeRequest
from schemas.intake import REFERENCE_PATTERN, Channel, workflow_id_for
from schemas.text import redact_for_publication, xml_safe
from whistle.db import queries

router = APIRouter(prefix="/open311/v2", tags=["open311"])
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_RECORDS, MAX_DAYS = 1000, 90
_PLURALS = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}
_SERVICE_NOTICE = "接诉即办: departments report in within 3 working days and resolve within 6"


PUBLIC_CHANNELS = {Channel.open311.value}


class Open311Error(Exception):
    def __init__(self, status: int, description: str, fmt: str = "json", headers: dict[str, str] | None = None):
        self.status, self.description, self.fmt = status, description, fmt if fmt in FORMATS else "json"
        self.headers = headers


def install(app: FastAPI) -> None:
    @app.exception_handler(Open311Error)
    async def _error(request: Request, exc: Open311Error) -> Response:
        response = render(exc.fmt, [{"code": exc.status, "description": exc.description}], "errors", "error", exc.status)
        response.headers.update(exc.headers or {})
        return response


# ---------------------------------------------------------------------------------- rendering
def _element(tag: str, value: Any) -> Element:
    el = Element(tag)
    if isinstance(value, dict):
        for k, v in value.items():
            el.append(_element(k, v))
    elif isinstance(value, list):
        for v in value:
            el.append(_element(_PLURALS.get(tag, "item"), v))
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = xml_safe(str(value))  # whatever is stored, the document stays well-formed
    return el


def render(fmt: str, data: Any, root: str, item: str | None = None, status: int = 200) -> Response:
    """A list of `item`s under `root`, or (item None) one document whose element is `root`."""
    if fmt == "xml":
        if item is None:
            el = _element(root, data)
        else:
            el = Element(root)
            for row in data:
                el.append(_element(item, row))
        xml = b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(el, encoding="utf-8", xml_declaration=False)
        return Response(xml, status_code=status, media_type=FORMATS["xml"])
    return JSONResponse(data, status_code=status, media_type=FORMATS["json"])


def split_format(name: str) -> tuple[str, str]:
    stem, dot, fmt = name.rpartition(".")
    if not dot or fmt not in FORMATS:
        raise Open311Error(404, f"{name!r}: add .json or .xml")
    return stem, fmt


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, f"unknown format {fmt!r}: use .json or .xml")
    return fmt


async def _limit(deps: Deps, request: Request, fmt: str) -> None:
    try:
        await check_address(deps, request)
    except ApiError as exc:
        raise Open311Error(429, exc.error, fmt, exc.headers) from None


def _check_jurisdiction(deps: Deps, request: Request, fmt: str) -> None:
    given = request.query_params.get("jurisdiction_id")
    if given and given != deps.jurisdiction.id:
        raise Open311Error(404, f"unknown jurisdiction_id {given!r}", fmt)


# ---------------------------------------------------------------------------------- services
@router.get("/discovery.{fmt}")
async def discovery(request: Request, deps: AppDeps, fmt: str) -> Response:
    fmt = _fmt(fmt)
    await _limit(deps, request, fmt)
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    return render(fmt, {
        "changeset": "2026-11-22T00:00:00Z",
        "contact": "12345 市民服务热线",
        "key_service": "API keys are issued by the district's 12345 operations team",
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": base,
            "changeset": "2026-11-22T00:00:00Z",
            "type": "production",
            "formats": ["application/json", "text/xml"],
        }],
    }, "discovery")


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """Optional fields with no value are left out (the spec's swagger file has no nulls)."""
    return {k: v for k, v in fields.items() if v is not None}


def _service(c) -> dict[str, Any]:
    return _present({
        "service_code": c.id,
        "service_name": c.name,
        "description": f"{c.name_en}. Lead department: {c.lead_department}",
        "metadata": bool(c.attributes),
        "type": "realtime",
        "keywords": ",".join(c.keywords) or None,
        "group": c.owning_level.value,
    })


@router.get("/services.{fmt}")
async def services(request: Request, deps: AppDeps, fmt: str) -> Response:
    fmt = _fmt(fmt)
    await _limit(deps, request, fmt)
    _check_jurisdiction(deps, request, fmt)
    return render(fmt, [_service(c) for c in deps.jurisdiction.categories], "services", "service")


@router.get("/services/{name}")
async def service_definition(request: Request, deps: AppDeps, name: str) -> Response:
    code, fmt = split_format(name)
    await _limit(deps, request, fmt)
    _check_jurisdiction(deps, request, fmt)
    try:
        c = deps.jurisdiction.category(code)
    except KeyError:
        raise Open311Error(404, f"unknown service_code {code!r}", fmt) from None
    attributes = [
        {
            "variable": True,
            "code": a.code,
            "datatype": a.datatype,
            "required": a.required,
            "order": i,
            "description": a.description,
            "values": [{"key": v, "name": v} for v in a.values],
        }
        for i, a in enumerate(c.attributes, start=1)
    ]
    return render(fmt, {"service_code": c.id, "attributes": attributes}, "service_definition")


# ---------------------------------------------------------------------------------- requests
def _agency(deps, unit_id: str | None) -> str | None:
    if unit_id is None or unit_id == "resident":
        return None
    if unit_id == "supervisor":
        return "区级督导 (district supervision)"
    j = deps.jurisdiction
    for finder in (j.unit, j.department):
        try:
            return finder(unit_id).name
        except KeyError:
            continue
    return unit_id


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _coarse(deps, grid_id: str | None) -> dict[str, Any]:
    """The community's name and the grid's centre: where, to the public, an issue is."""
    j = deps.jurisdiction
    try:
        grid = j.unit(grid_id) if grid_id else None
    except KeyError:
        grid = None
    if grid is None:
        return {}
    try:
        community = j.unit(grid.parent).name if grid.parent else None
    except KeyError:
        community = None
    return {"address": community, "lat": grid.lat, "long": grid.long}


def service_request(deps, snapshot: dict[str, Any]) -> dict[str, Any]:
    """One of our issues as an Open311 service request (from the state or the read model),
    under the publication policy of this module's docstring."""
    try:
        category = deps.jurisdiction.category(snapshot["category"])
        service_name = category.name
    except KeyError:
        service_name = None
    public_text = snapshot.get("channel") in PUBLIC_CHANNELS
    closed = snapshot["stage"] == "closed"
    notes = f"closed: {snapshot.get('outcome')}" if closed else f"stage: {snapshot['stage']}"
    if public_text and snapshot.get("resolution"):
        notes += f"; {redact_for_publication(snapshot['resolution'])}"
    description = redact_for_publication(snapshot["description"]) if public_text and snapshot.get("description") else None
    return _present({
        "service_request_id": snapshot["issue_id"],
        "status": "closed" if closed else "open",
        "status_notes": notes,
        "service_name": service_name,
        "service_code": snapshot["category"],
        "description": description,
        "agency_responsible": _agency(deps, snapshot.get("owner_unit")),
        "service_notice": _SERVICE_NOTICE,
        "requested_datetime": _iso(snapshot["created_at"]),
        "updated_datetime": _iso(snapshot.get("updated_at")),
        "expected_datetime": _iso(snapshot.get("due_at")),
        "address_id": snapshot.get("grid_id"),
        "zipcode": None,
        **_coarse(deps, snapshot.get("grid_id")),
    })


_ATTRIBUTE = re.compile(r"^attribute\[([a-z][a-z0-9_]{0,31})\]$")
# Our intake's fields by the names of the form they came from (for error messages).
_FORM_FIELDS = {"reporter.name": "first_name/last_name", "reporter.phone": "phone", "reporter.email": "email",
                "grid_id": "address_id", "address": "address_string", "category": "service_code"}


@router.post("/requests.{fmt}")
async def create_request(request: Request, deps: AppDeps, fmt: str) -> Response:
    """Form-encoded, as the spec gives it: api_key, service_code, lat/long or address_string
    (or address_id, a grid id), description, first_name/last_name/phone/email, attribute[code].
    An `Idempotency-Key` header makes a retried POST return the same request."""
    fmt = _fmt(fmt)
    try:
        form = await request.form()
    except Exception:
        raise Open311Error(400, "the body must be application/x-www-form-urlencoded or multipart/form-data", fmt) from None
    # The spec's swagger file sends the parameters in the query string: take both, the body winning.
    fields = {k: v for k, v in request.query_params.multi_items()} | {k: v for k, v in form.multi_items() if isinstance(v, str)}
    try:
        p = await identify(deps, request, fields.get("api_key") or request.headers.get("X-API-Key"))
    except ApiError as exc:
        raise Open311Error(exc.status, exc.error, fmt, exc.headers) from None
    given = fields.get("jurisdiction_id")
    if given and given != deps.jurisdiction.id:
        raise Open311Error(404, f"unknown jurisdiction_id {given!r}", fmt)
    if p.role not in SUBMITTERS:
        raise Open311Error(403, "this api_key may not submit Open311 requests", fmt)
    reference = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    if not re.match(REFERENCE_PATTERN, reference):
        raise Open311Error(400, "Idempotency-Key: letters, digits and '_.:-', at most 64", fmt)
    attributes = {m.group(1): v for k, v in fields.items() if (m := _ATTRIBUTE.match(k))}
    if not fields.get("service_code"):
        raise Open311Error(400, "service_code is required", fmt)
    try:
        name = " ".join(x for x in (fields.get("first_name"), fields.get("last_name")) if x) or None
        contact = {"name": name, "phone": fields.get("phone") or None, "email": fields.get("email") or None}
        reporter = contact if any(contact.values()) else None  # checked by IntakeRequest, control characters too
        lat = float(fields["lat"]) if fields.get("lat") else None
        long = float(fields["long"]) if fields.get("long") else None
        code = fields["service_code"]
        known = {c.id: c.name for c in deps.jurisdiction.categories}
        body = IntakeRequest(
            channel=Channel.open311,
            reference=reference,
            category=code,
            # The spec makes description optional; the service's name stands in for it.
            description=fields.get("description") or known.get(code, code),
            grid_id=fields.get("address_id") or None,
            lat=lat,
            long=long,
            address=fields.get("address_string") or None,
            attributes=attributes,
            reporter=reporter,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = error_field(first) or "input"
        field = _FORM_FIELDS.get(field, field)  # as the client sent it
        raise Open311Error(400, f"{field}: {first['msg']}", fmt) from None
    except ValueError:
        raise Open311Error(400, "lat and long must be numbers", fmt) from None
    if (lat is None) != (long is None):
        raise Open311Error(400, "give both lat and long", fmt)
    try:
        intake = to_intake(deps, body)
    except ApiError as exc:
        detail = "; ".join(f"{d['field']}: {d['message']}" for d in exc.detail) if isinstance(exc.detail, list) else exc.error
        raise Open311Error(400, detail, fmt) from None
    try:  # as /v1 (the channel of the key, a unit's own part of the district); the resident's own
        # way to rate the result goes to the contact of the first submission only
        await intake_service.submit(deps, p, intake, deliver=True)  # its answer carries no token
    except ApiError as exc:
        raise Open311Error(exc.status, exc.error, fmt) from None
    answer = [{"service_request_id": intake.issue_id, "token": reference, "service_notice": _SERVICE_NOTICE}]
    # 200 as the spec's swagger file declares it (clients validating against it refuse 201).
    return render(fmt, answer, "service_requests", "request")


def _csv(value: str | None) -> list[str] | None:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    return items or None


# Dates the read model can compare, with room for MAX_DAYS either side.
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9000, 1, 1, tzinfo=timezone.utc)


def _datetime(value: str | None, name: str, fmt: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # not a date; or 0001-01-01T00:00:00+14:00, before year 1 in UTC
        raise Open311Error(400, f"{name} must be a W3C datetime, e.g. 2026-10-01T00:00:00+08:00", fmt) from None
    if not _EARLIEST <= parsed <= _LATEST:
        raise Open311Error(400, f"{name} must be between 1970 and 9000", fmt)
    return parsed


@router.get("/requests.{fmt}")
async def list_requests(request: Request, deps: AppDeps, fmt: str) -> Response:
    """Filters of the spec (service_request_id, service_code, start_date, end_date, status);
    by default the last 90 days, at most 1000 records; `page`/`page_size` page through."""
    fmt = _fmt(fmt)
    await _limit(deps, request, fmt)
    _check_jurisdiction(deps, request, fmt)
    q = request.query_params
    ids = _csv(q.get("service_request_id"))
    codes = statuses = start = end = None
    if ids is None:  # service_request_id overrides every other filter
        codes = _csv(q.get("service_code"))
        statuses = _csv(q.get("status"))
        if statuses and not set(statuses) <= {"open", "closed"}:
            raise Open311Error(400, "status is open or closed (comma separated)", fmt)
        start, end = _datetime(q.get("start_date"), "start_date", fmt), _datetime(q.get("end_date"), "end_date", fmt)
        if start and end and end - start > timedelta(days=MAX_DAYS):
            raise Open311Error(400, f"start_date to end_date may span at most {MAX_DAYS} days", fmt)
        if start is None:
            start = (end or datetime.now(timezone.utc)) - timedelta(days=MAX_DAYS)
    try:
        page = int(q.get("page", 1))
        page_size = int(q.get("page_size", MAX_RECORDS))
    except ValueError:
        raise Open311Error(400, "page and page_size must be integers", fmt) from None
    if not (1 <= page <= 100_000 and 1 <= page_size <= MAX_RECORDS):
        raise Open311Error(400, f"page ≥ 1 and 1 ≤ page_size ≤ {MAX_RECORDS}", fmt)
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(
            queries.OPEN311_REQUESTS, ids, codes, statuses, start, end, page_size, (page - 1) * page_size
        )
    return render(fmt, [service_request(deps, r["snapshot"]) for r in rows], "service_requests", "request")


async def _one(request: Request, deps: Deps, name: str) -> Response:
    issue_id, fmt = split_format(name)
    await _limit(deps, request, fmt)
    _check_jurisdiction(deps, request, fmt)
    async with deps.pool.acquire() as conn:
        row = await conn.fetchrow(queries.SELECT_ISSUE, issue_id)
    if row is not None:
        return render(fmt, [service_request(deps, row["snapshot"])], "service_requests", "request")
    # Just submitted: the read model may lag the workflow by a few milliseconds.
    from temporalio.client import WorkflowQueryFailedError
    from temporalio.service import RPCError

    from workflows.issue import IssueWorkflow

    try:
        s = await deps.client.get_workflow_handle(workflow_id_for(issue_id)).query(IssueWorkflow.state, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        raise Open311Error(404, f"no service request {issue_id!r}", fmt) from None
    return render(fmt, [service_request(deps, s.model_dump(mode="json"))], "service_requests", "request")


@router.get("/requests/{name}")
async def get_request(request: Request, deps: AppDeps, name: str) -> Response:
    return await _one(request, deps, name)


@router.get("/request/{name}", include_in_schema=False)
async def get_request_singular(request: Request, deps: AppDeps, name: str) -> Response:
    """The path as the spec's swagger file spells it."""
    return await _one(request, deps, name)


@router.get("/tokens/{name}")
async def token(request: Request, deps: AppDeps, name: str) -> Response:
    token_id, fmt = split_format(name)
    await _limit(deps, request, fmt)
    _check_jurisdiction(deps, request, fmt)
    issue_id = f"{Channel.open311.value}-{token_id}"
    async with deps.pool.acquire() as conn:
        exists = await conn.fetchval("SELECT 1 FROM issues WHERE issue_id = $1", issue_id)
    if not exists:
        try:
            await deps.client.get_workflow_handle(workflow_id_for(issue_id)).describe()
        except Exception:
            raise Open311Error(404, f"unknown token {token_id!r}", fmt) from None
    return render(fmt, [{"service_request_id": issue_id, "token": token_id}], "service_requests", "request")
