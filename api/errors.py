"""Every error is a status with a JSON body that says why: {"error": "...", "detail": ...}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None):
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def body(error: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error} | ({"detail": detail} if detail is not None else {})


def validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors, reduced to field and message (no input echo: it may be personal data)."""
    return [{"field": error_field(e), "message": e.get("msg", "")} for e in errors]


def error_field(error: dict[str, Any]) -> str:
    """Where a pydantic error is: its location, and below it the field a model-level check names
    (schemas.text.reject_controls puts the path of the offending text in `ctx.field`)."""
    below = (error.get("ctx") or {}).get("field")
    return ".".join([*(str(p) for p in error.get("loc", ()) if p != "body"), *([str(below)] if below else [])])


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (asked of the router, included routers too)."""
    from starlette.routing import Match

    return [
        m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
        if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in request.app.routes)
    ]


def refused_update(err: Exception) -> ApiError:
    """A workflow update's refusal as HTTP: the validators' Forbidden is 403, anything they
    refused for the current state is 409, an input the workflow could not read is 422."""
    from temporalio.exceptions import ApplicationError

    cause = getattr(err, "cause", None)
    if isinstance(cause, ApplicationError):
        return ApiError(403 if cause.type == "Forbidden" else 409, cause.message)
    return ApiError(422, "invalid input", str(cause))


# Temporal's trouble, in HTTP terms. A timeout is 504: the action may still land, so a client
# retries with the same Idempotency-Key. Anything else that keeps Temporal from answering
# (unreachable, a workflow whose task keeps failing) is 503 with what ops should look at.
RETRY_SECONDS = "2"


def temporal_trouble(err: Exception) -> ApiError:
    from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.service import RPCError, RPCStatusCode

    retry = {"Retry-After": RETRY_SECONDS}
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError) or (
        isinstance(err, RPCError) and err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
    ):
        return ApiError(504, "Temporal did not answer in time; the action may still be applied: "
                             "retry with the same Idempotency-Key", headers=retry)
    text = str(err)
    if "failed state" in text or "timed out before a worker" in text or isinstance(err, WorkflowQueryFailedError):
        return ApiError(503, "the issue's workflow cannot answer now (its workflow task is failing or no "
                             "worker is polling); ops are alerted: retry later", headers=retry)
    if isinstance(err, RPCError) and err.status == RPCStatusCode.UNAVAILABLE:
        return ApiError(503, "Temporal is unreachable; retry later", headers=retry)
    return ApiError(503, "Temporal refused the request; retry later", getattr(getattr(err, "status", None), "name", None),
                    headers=retry)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.error, exc.detail), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(body("invalid input", validation_detail(exc.errors())), status_code=422)

    async def _temporal(request: Request, exc: Exception) -> JSONResponse:
        return await _api_error(request, temporal_trouble(exc))

    from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.service import RPCError

    for kind in (RPCError, WorkflowQueryFailedError, WorkflowUpdateRPCTimeoutOrCancelledError):
        app.add_exception_handler(kind, _temporal)

    @app.exception_handler(OSError)
    async def _unreachable(request: Request, exc: OSError) -> JSONResponse:
        # PostgreSQL or Temporal refused the connection: asyncpg and gRPC raise OSError kinds.
        return JSONResponse(body("a backing service is unreachable; retry later"), status_code=503,
                            headers={"Retry-After": RETRY_SECONDS})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        import structlog

        structlog.get_logger("whistle.api").error("api.unexpected", error=type(exc).__name__, path=request.url.path)
        if _is_postgres(exc):
            return JSONResponse(body("the read model is unavailable; retry later"), status_code=503,
                                headers={"Retry-After": RETRY_SECONDS})
        return JSONResponse(body("internal error"), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # Starlette names the first matching route's methods only
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(body(message), status_code=exc.status_code, headers=headers or None)

    app.openapi = lambda: openapi(app)


def openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, saying what the API really answers: 422 as `{"error", "detail":
    [{"field", "message"}]}` (not FastAPI's `loc/msg/type`), and errors as `{"error", "detail"}`."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["ValidationError"] = {
        "title": "ValidationError", "type": "object", "required": ["field", "message"],
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    }
    schemas["HTTPValidationError"] = {
        "title": "HTTPValidationError", "type": "object", "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
        },
    }
    schemas["Error"] = {
        "title": "Error", "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string"}, "detail": {}},
    }
    schemas["Open311Errors"] = {
        "title": "Open311Errors", "type": "array",
        "items": {"type": "object", "required": ["code", "description"],
                  "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}},
    }
    for path, operations in schema.get("paths", {}).items():
        open311 = path.startswith("/open311/")
        for op in operations.values():
            _document_errors(op["responses"], open311)
    app.openapi_schema = schema
    return schema


# What any route may answer besides its success, and why (the description says it).
ERRORS = {
    400: "malformed request (a body that is not JSON, an unusable query)",
    401: "no API key, or an unknown one",
    403: "not allowed for this key (role or scope)",
    404: "unknown",
    409: "not allowed in the current state (the workflow's reason)",
    413: "request body too large",
    422: "invalid input",
    429: "rate limited; see Retry-After",
    503: "the issue's workflow, Temporal or the read model does not answer now; see Retry-After",
    504: "Temporal did not answer in time: the action may still land; retry with the same Idempotency-Key",
}


def _document_errors(responses: dict[str, Any], open311: bool) -> None:
    if open311:  # the spec's error list, in JSON or XML like the success
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/Open311Errors"}},
                   "text/xml": {"schema": {"type": "string"}}}
        for ok in ("200", "201"):
            if ok in responses:
                responses[ok]["content"] = {**responses[ok].get("content", {}), "text/xml": {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for code, why in ERRORS.items():
        if code == 422 and not open311:
            responses.setdefault("422", {"description": why, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}})
            continue
        entry = responses.setdefault(str(code), {"description": why, "content": content})
        if code in (429, 503, 504):
            entry["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def _is_postgres(exc: Exception) -> bool:
    import asyncpg

    return isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.InterfaceError))
