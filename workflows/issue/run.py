"""What one run of IssueWorkflow knows while it moves: the issue's state, the patches the run
took (workflows/patches.py) and the clock of the move being made. Shared by the workflow, its
moves and its effects."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.issue import IssueState
    from workflows.patches import IssuePatches


class IssueRun:
    def __init__(self, carried: IssueState | None, patches: IssuePatches) -> None:
        self.s: IssueState | None = carried
        self.patches = patches
        # The time of the move being made: the moment its timer fired or its update arrived.
        # Never workflow.now() after an await of a local activity: a task that completed with
        # only the activity's marker left the continuation to the next task live, while replay
        # runs it within the first, so the clock read there differs between the two (the same
        # asymmetry as the patch markers', workflows/patches.py) and with it the deadlines, the
        # reminders due and whether a timer is started.
        self.move_at: datetime = workflow.now()

    @property
    def state(self) -> IssueState:
        """The registered issue's state (every move happens after registration)."""
        assert self.s is not None, "the issue is not registered yet"
        return self.s

    @property
    def now(self) -> datetime:
        """The clock of the move being made (runs before v5 read workflow.now() at each use)."""
        return self.move_at if self.patches.v5 else workflow.now()

    def move_at_least(self, at: datetime) -> None:
        """A new move starts at `at` (a fired timer's due time, an update's arrival); the clock
        never goes back."""
        self.move_at = max(self.move_at, at)
