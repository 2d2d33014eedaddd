"""Starting an issue: one workflow per (channel, reference), whoever submits it and how often."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from schemas.intake import IssueIntake
from schemas.issue import IssueState, IssueWorkflowInput
from whistle.temporal import CATEGORY, CHANNEL, ISSUE_STAGE
from workflows.issue import IssueWorkflow


async def submit_issue(
    client: Client, intake: IssueIntake, task_queue: str, **options
) -> tuple[WorkflowHandle[IssueWorkflow, IssueState], bool]:
    """Start the issue's workflow, or find the one that exists. Returns (handle, created).

    The workflow id is derived from (channel, reference). A start racing another start, or
    repeating one whose workflow has closed, gets WorkflowAlreadyStarted from the server
    (conflict policy FAIL, reuse policy REJECT_DUPLICATE): never a second workflow.
    """
    try:
        handle = await client.start_workflow(
            IssueWorkflow.run,
            IssueWorkflowInput(intake=intake, **options),
            id=intake.workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ISSUE_STAGE, "grid"),
                    SearchAttributePair(CATEGORY, intake.category),
                    SearchAttributePair(CHANNEL, intake.channel.value),
                ]
            ),
        )
        return handle, True
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(IssueWorkflow.run, intake.workflow_id), False
