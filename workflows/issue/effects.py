"""What a transition of an issue does outside the workflow: the event appended, owners and due
time derived, the search attributes and the Web UI's details updated, the read model written
and the units told (through idempotent activities). The one home of the three patched write
paths."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.issue import IssueActivities
    from domain.deadlines import earliest_due_at
    from domain.ownership import owners
    from schemas.issue import IssueEvent, Stage, TransitionRecord
    from domain.ladder import Level
    from schemas.labels import EVENT, STAGE, local_time_named, unit_name
    from schemas.principal import Actor
    from whistle.temporal import CATEGORY, CHANNEL, DUE_AT, ISSUE_STAGE, OVERDUE, OWNER_UNIT, STREET
    from workflows.common import RECORD, as_facts, notify, notify_started
    from workflows.issue.run import IssueRun

_SEARCH_ATTRIBUTES = {k.name: k for k in (ISSUE_STAGE, OWNER_UNIT, STREET, CATEGORY, CHANNEL, OVERDUE, DUE_AT)}


class Effects:
    def __init__(self, issue: IssueRun, on_change: Callable[[], None]) -> None:
        self.issue = issue
        self.on_change = on_change  # the loop's timer may have moved
        self._search_attributes: dict[str, Any] = {}
        self._writes: list[asyncio.Future[Any]] = []  # read-model writes and notifications under way

    async def transition(
        self,
        kind: str,
        actor: Actor | None,
        unit_id: str | None,
        stage_to: Stage | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        s = self.issue.state
        now = self.issue.now
        stage_from = s.stage
        if stage_to is not None:
            s.stage = stage_to
        s.updated_at = now
        s.owners = owners(s)
        s.owner_unit = s.owners[0] if s.owners else None
        s.due_at = earliest_due_at(s.deadlines)
        event = IssueEvent(
            seq=s.seq + 1, at=now, kind=kind, stage_from=stage_from, stage_to=s.stage,
            unit_id=unit_id, actor=actor, detail=detail or {},
        )
        s.seq = event.seq
        self._upsert_search_attributes()
        self.on_change()
        record = TransitionRecord(event=event, state=s.model_copy(deep=True))
        workflow.set_current_details(self._current_details())  # the Web UI's "current details"; no command
        summary = f"记录: {EVENT.get(kind, kind)} → {STAGE.get(s.stage.value, s.stage.value)}"
        if self._local_writes():
            self._writes.append(workflow.start_local_activity_method(
                IssueActivities.record_transition, record, summary=summary, **RECORD))
        elif self._concurrent_writes():
            self._writes.append(workflow.start_activity_method(IssueActivities.record_transition, record, **RECORD))
        else:
            await workflow.execute_activity_method(IssueActivities.record_transition, record, **RECORD)

    async def notify(self, kind: str, unit_id: str, message: str, deadline_key: str | None = None, **facts: Any) -> None:
        s = self.issue.state
        facts = as_facts(facts)
        facts.setdefault("category", s.category)
        if self._local_writes():
            self._writes.append(
                notify_started(kind, s.issue_id, unit_id, message, deadline_key, local=True, seq=s.seq, facts=facts,
                               about_issue=True)
            )
        elif self._concurrent_writes():
            self._writes.append(notify_started(kind, s.issue_id, unit_id, message, deadline_key, about_issue=True))
        else:
            await notify(kind, s.issue_id, unit_id, message, deadline_key, about_issue=True)

    async def flush(self) -> None:
        """Wait for the writes and notifications of the move: its update returns, or the
        workflow sleeps, only once the read model shows it."""
        while self._writes:
            writes, self._writes = self._writes, []
            await asyncio.gather(*writes)

    def _local_writes(self) -> bool:
        """A move's read-model writes and notifications run as local activities, inside the
        workflow task that makes the move: an update returns after one task, not after a task,
        the activities' round trips through the server and a second task. A write of a task that
        then fails may land without being in history; the task's retry writes the same seq
        again and the read model keeps the later write. Older runs ran them as activities."""
        return self.issue.patches.local_writes()

    def _concurrent_writes(self) -> bool:
        """(Older runs) a move's writes run at once, awaited together by `flush`."""
        return self.issue.patches.concurrent_writes()

    def _current_details(self) -> str:
        """Stage, owner and next deadline, in the district's words and time (Markdown)."""
        s = self.issue.state
        lines = [f"**阶段** {STAGE.get(s.stage.value, s.stage.value)}",
                 f"**承办** {'、'.join(unit_name(u) for u in s.owners) or '—'}",
                 f"**时限** {local_time_named(s.due_at, s.context.timezone)}{' · **已超时**' if s.overdue else ''}"]
        if s.outcome is not None:
            lines.append(f"**结果** {s.outcome.value}")
        return "\n\n".join(lines)

    def _upsert_search_attributes(self) -> None:
        """Only the attributes that changed: an upsert is a command in history."""
        s = self.issue.state
        wanted: dict[str, Any] = {
            ISSUE_STAGE.name: s.stage.value,
            OWNER_UNIT.name: s.owner_unit,
            STREET.name: s.context.chain.get(Level.street),
            CATEGORY.name: s.category,
            CHANNEL.name: s.channel,
            OVERDUE.name: s.overdue,
            DUE_AT.name: s.due_at,
        }
        updates = []
        for name, value in wanted.items():
            if name in self._search_attributes and self._search_attributes[name] == value:
                continue
            self._search_attributes[name] = value
            key = _SEARCH_ATTRIBUTES[name]
            updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)
