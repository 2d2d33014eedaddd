"""Running a workflow update for an HTTP request, and saying in HTTP terms why it did not run."""

from __future__ import annotations

import hashlib
import json

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, refused_update

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


def update_id_for(idempotency_key: str | None, principal_id: str, action: str, body: object) -> str | None:
    """The Temporal update id of a request that carries an `Idempotency-Key`.

    Temporal runs an update id once per workflow run and answers a repeat with the stored
    outcome, even after the run has closed: so a client's retry of an applied action gets the
    same answer, not a second application. One exception: a retry that reaches the next run of
    a continue-as-new is refused by the workers (409 "was applied already ... read the issue"),
    never applied twice. The id binds the key to who sends it, the action
    and its body, so another principal's key or a different body can never pick up an outcome
    that is not theirs (a reused key with another body is another request)."""
    if not idempotency_key:
        return None
    if len(idempotency_key) > 128 or not idempotency_key.isprintable():
        raise ApiError(422, "invalid input", [{"field": IDEMPOTENCY_KEY_HEADER, "message": "at most 128 printable characters"}])
    canonical = json.dumps([principal_id, action, idempotency_key, body], sort_keys=True, ensure_ascii=False, default=str)
    return f"{action}-{hashlib.sha256(canonical.encode()).hexdigest()[:40]}"


async def run_update(
    client: Client, workflow_id: str, name: str, arg, result_type, *, missing: str, finished: str,
    update_id: str | None = None,
) -> tuple[WorkflowHandle, object]:
    """The update's result. No state is read first: the update itself says when the workflow
    is unknown or no longer running, and only then is it described to tell which."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        return handle, await handle.execute_update(name, arg, result_type=result_type, id=update_id)
    except WorkflowUpdateFailedError as err:
        raise refused_update(err) from None
    except RPCError as err:
        if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise
    try:
        described = await handle.describe()
    except RPCError:
        raise ApiError(404, missing) from None
    if described.status == WorkflowExecutionStatus.FAILED:  # its start was refused
        raise ApiError(404, f"{missing}: its intake was refused")
    raise ApiError(409, finished)
