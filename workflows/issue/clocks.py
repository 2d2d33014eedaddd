"""An issue's running clocks, kept by the rules of domain/deadlines.py: opened with the span its
policy gives (working days through the calendar's local activity), closed when what they wait
for happens."""

from __future__ import annotations

from typing import Callable, Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.deadlines import DeadlineKey, belongs_to, find, policy, running, supervisions_so_far
    from domain.ladder import Level
    from schemas.issue import Assignment, Deadline
    from schemas.labels import DEADLINE
    from workflows.common import deadline_at
    from workflows.issue.run import IssueRun


class Clocks:
    def __init__(self, issue: IssueRun) -> None:
        self.issue = issue

    async def open_handle(self, level: Level, unit_id: str) -> Deadline:
        """A ladder level's clock for handling the issue."""
        spec, reminders = policy("handle", self.issue.state.context.policies, level)
        return await self._open(DeadlineKey.numbered("handle", unit_id, self.issue.state.deadlines), unit_id, spec, reminders)

    async def open_assignment(self, kind: Literal["accept", "resolve"], a: Assignment) -> Deadline:
        """A department's report-in (the urgent span for an urgent issue) or resolve clock."""
        spec, reminders = policy(kind, self.issue.state.context.policies, urgent=self.issue.state.urgent)
        return await self._open(DeadlineKey.of_assignment(kind, a), a.department_id, spec, reminders)

    async def open_supervision(self, a: Assignment) -> Deadline:
        """The next 督办 of a department whose resolve clock ran out."""
        s = self.issue.state
        spec, reminders = policy("supervise", s.context.policies)
        key = DeadlineKey.supervision(a, supervisions_so_far(a, s.deadlines) + 1)
        return await self._open(key, a.department_id, spec, reminders)

    async def open_feedback(self, resident: str) -> Deadline:
        """The resident's window to say whether they are satisfied."""
        spec, reminders = policy("feedback", self.issue.state.context.policies)
        return await self._open(DeadlineKey.numbered("feedback", resident, self.issue.state.deadlines), resident, spec, reminders)

    async def _open(self, key: DeadlineKey, unit_id: str, spec, reminders: list[float]) -> Deadline:
        now = self.issue.now
        d = Deadline(
            key=str(key),
            kind=key.kind,
            unit_id=unit_id,
            started_at=now,
            due_at=await deadline_at(now, spec, what=DEADLINE.get(key.kind, key.kind)),
            reminders=sorted(reminders),
        )
        self.issue.state.deadlines.append(d)
        return d

    def find(self, key: DeadlineKey) -> Deadline | None:
        return find(self.issue.state.deadlines, key)

    def close(self, predicate: Callable[[Deadline], bool]) -> None:
        for d in running(self.issue.state.deadlines):
            if predicate(d):
                d.open = False

    def close_key(self, key: DeadlineKey) -> None:
        self.close(lambda d: d.key == str(key))

    def close_assignment(self, a: Assignment) -> None:
        """Its report-in, resolve and 督办 clocks."""
        self.close(lambda d: belongs_to(d, a))

    def close_handle(self) -> None:
        self.close(lambda d: d.kind == "handle")

    def close_all(self) -> None:
        self.close(lambda d: True)
