"""Starting an issue: one workflow per (channel, reference), whoever submits it and how often."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadConverter
from temporalio.exceptions import WorkflowAlreadyStartedError

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


async def submit_issue(
    client: Client, intake: IssueIntake, task_queue: str, jurisdiction: Jurisdiction | None = None, **options
) -> tuple[WorkflowHandle[IssueWorkflow, IssueState], bool]:
    """Start the issue's workflow, or find the one that exists. Returns (handle, created).

    The workflow id is derived from (channel, reference). A start racing another start, or
    repeating one whose workflow has closed, gets WorkflowAlreadyStarted from the server
    (conflict policy FAIL, reuse policy REJECT_DUPLICATE): never a second workflow.
    """
    metadata = {}
    if jurisdiction is not None:
        summary, details = issue_summary(intake, jurisdiction)
        metadata = {"static_summary": _plain(summary), "static_details": _plain(details)}
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
            **metadata,
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
