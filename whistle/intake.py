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

from schemas.intake import IssueIntake, Reporter
from schemas.issue import IssueState, IssueWorkflowInput
from schemas.text import contacts_in, redact_contacts
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


def separate_contacts(
    description: str, address: str | None, reporter: Reporter | None
) -> tuple[str, str | None, Reporter | None]:
    """Contact details typed into the free text leave it: phone numbers and e-mail addresses
    join the reporter's contact when it has none of its own (encrypted in history, shown only to
    those who may call back), ID-card numbers are dropped. The text, which the read model and the
    handlers' lists keep, holds a placeholder instead. Names cannot be told from words: see
    docs/security.md."""
    found = contacts_in(f"{description}\n{address or ''}")
    contact = reporter.model_dump() if reporter else {"name": None, "phone": None, "email": None}
    for kind in ("phone", "email"):
        if not contact[kind] and found[kind]:
            contact[kind] = found[kind][0].replace(" ", "-")
    try:
        merged = Reporter(**contact) if any(contact.values()) else None
    except ValueError:  # what the pattern found is not a number the contact accepts
        merged = reporter
    return redact_contacts(description), redact_contacts(address) if address else address, merged
