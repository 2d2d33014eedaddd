"""Running a workflow update for an HTTP request, and saying in HTTP terms why it did not run."""

from __future__ import annotations

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, refused_update


async def run_update(
    client: Client, workflow_id: str, name: str, arg, result_type, *, missing: str, finished: str
) -> tuple[WorkflowHandle, object]:
    """The update's result. No state is read first: the update itself says when the workflow
    is unknown or no longer running, and only then is it described to tell which."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        return handle, await handle.execute_update(name, arg, result_type=result_type)
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
