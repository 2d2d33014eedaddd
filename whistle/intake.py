"""Starting an issue: one workflow per (channel, reference), whoever submits it and how often."""

from __future__ import annotations

import contextlib
import uuid
from typing import NamedTuple

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadConverter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from schemas.intake import IssueIntake, Reporter
from schemas.issue import IssueState, IssueWorkflowInput
from schemas.jurisdiction import Jurisdiction, Level
from schemas.text import contacts_in, redact_contacts
from whistle.temporal import CATEGORY, CHANNEL, ISSUE_STAGE
from workflows.issue import IssueWorkflow


CHANNEL_NAMES = {
    "hotline": "12345热线", "qr": "社区二维码", "wechat": "微信小程序", "patrol": "网格巡查",
    "walkin": "来访", "open311": "Open311",
}
_LEVEL_NAMES = {Level.department: "区级职能部门", Level.street: "街道", Level.area: "片区", Level.community: "社区", Level.grid: "网格"}


def issue_summary(intake: IssueIntake, jurisdiction: Jurisdiction) -> tuple[str, str]:
    """The workflow's static summary (one line) and details (markdown) for the Web UI and
    `temporal workflow describe`: category, grid → street, channel, in Chinese with the ids.
    Nothing from the description or the reporter: these are shown to whoever reads the UI."""
    try:
        category = jurisdiction.category(intake.category)
        category_name = category.name
    except KeyError:  # the workflow refuses it itself (UnknownCategory)
        category, category_name = None, intake.category
    try:
        chain = jurisdiction.chain(intake.grid_id)
        names = {level: jurisdiction.unit(uid).name for level, uid in chain.items()}
    except KeyError:
        chain, names = {Level.grid: intake.grid_id}, {Level.grid: intake.grid_id}
    path = [lvl for lvl in (Level.grid, Level.community, Level.area, Level.street) if lvl in names]
    channel = CHANNEL_NAMES.get(intake.channel.value, intake.channel.value)
    summary = f"{category_name} · {' → '.join(names[lvl] for lvl in path)} · {channel} · {intake.issue_id}"
    details = [
        f"**问题** `{intake.issue_id}`（工作流 `{intake.workflow_id}`）",
        f"**类别** {category_name} `{intake.category}`",
        "**位置** " + " → ".join(f"{names[lvl]} `{chain[lvl]}`" for lvl in path),
        f"**渠道** {channel} `{intake.channel.value}` · 渠道编号 `{intake.reference}`",
    ]
    if category is not None:
        lead = next((d.name for d in jurisdiction.departments if d.id == category.lead_department), category.lead_department)
        details.append(f"**责任层级** {_LEVEL_NAMES.get(category.owning_level, category.owning_level.value)} · "
                       f"**牵头部门** {lead} `{category.lead_department}`")
    if intake.urgent or (category is not None and category.urgent):
        details.append("**紧急** 是")
    return summary, "\n\n".join(details)


def _plain(text: str) -> Payload:
    """Not through the encrypting codec: the summary holds no personal data, and ops read it in
    the Web UI list and the CLI without the codec server."""
    return PayloadConverter.default.to_payloads([text])[0]


class Submitted(NamedTuple):
    handle: WorkflowHandle[IssueWorkflow, IssueState]
    created: bool  # this call started the issue; False: it existed already
    state: IssueState | None  # as registered; None when the caller must read it (see submit_issue)


async def submit_issue(
    client: Client, intake: IssueIntake, task_queue: str, jurisdiction: Jurisdiction | None = None, **options
) -> Submitted:
    """Start the issue's workflow and wait for its registration, or find the one that exists.

    One call (update-with-start): the start, and the `register` update that answers with the
    state once the issue has registered; no one polls. The workflow id is derived from
    (channel, reference): a start racing another one, or repeating one whose workflow is running
    or closed, is refused by the server (conflict policy FAIL, reuse policy REJECT_DUPLICATE),
    never a second workflow, and sends nothing to the issue (a resubmission leaves its history
    alone). The SDK retries its own call with the same request id, which the server takes as the
    same start.

    The state is None, for the caller to read by query (api.intake.wait_registered), when the
    issue existed already, and when the worker is older than the `register` update (a rolling
    upgrade: the start happened, the SDK refused the unknown update). An intake the workflow
    refuses (an unknown category or grid) fails its run: WorkflowFailureError says why.
    """
    metadata = {}
    if jurisdiction is not None:
        summary, details = issue_summary(intake, jurisdiction)
        metadata = {"static_summary": _plain(summary), "static_details": _plain(details)}
    start = WithStartWorkflowOperation(
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
        **metadata,
    )
    try:
        state = await client.execute_update_with_start_workflow(
            IssueWorkflow.register, start_workflow_operation=start, id=f"register-{uuid.uuid4().hex}")
        return Submitted(await start.workflow_handle(), True, state)
    except WorkflowAlreadyStartedError:
        await _started(start)
        return Submitted(client.get_workflow_handle_for(IssueWorkflow.run, intake.workflow_id), False, None)
    except WorkflowUpdateFailedError as err:
        handle = await start.workflow_handle()
        cause = err.cause if isinstance(err.cause, ApplicationError) else None
        if cause is not None and cause.type == "AcceptedUpdateCompletedWorkflow":
            await handle.result()  # the run ended before it registered: WorkflowFailureError says why
        if cause is None or "expected but not found" not in cause.message:
            raise
        # A worker older than the register update refused it, as the SDK words an unknown update.
        return Submitted(handle, True, None)
    except BaseException:
        await _started(start)
        raise


async def _started(start: WithStartWorkflowOperation) -> None:
    """Collect the start's own outcome, which the SDK keeps aside when the call fails: unread, it
    is logged as "Future exception was never retrieved" each time. The SDK settles it before its
    call returns or raises, so this never waits."""
    with contextlib.suppress(BaseException):  # a stored CancelledError is the call's, not ours
        await start.workflow_handle()


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
