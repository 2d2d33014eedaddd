"""Which code path a run of IssueWorkflow takes: the one home of `workflow.patched`.

THE RULE. A run asks every patch once, in the workflow's `__init__` (`@workflow.init`), through
`IssuePatches.ask()`; everything else reads the answers from the object it returns. A new
change adds a field here, asked in `ask()` (never a `workflow.patched` call anywhere else).
`__init__` runs in the run's first activation after its patch markers are announced and before
any handler or `run()`: an update handler of a continued-as-new run (whose carried state lets
it act at once) runs before `run()` does, so even the top of `run()` is too late.

WHY. Replay announces the patch markers of a workflow task at that task's first activation. A
patch asked after an await may be asked, on replay, in another task than it was live: a task
that completed with only a local activity's marker left the activity's continuation to the next
task live, but on replay the activity resolves within the first, before the next task's
markers are announced. `patched()` then answers False, memoizes it, and the marker that follows
has no command: `TMPRL1100 Non-deprecated patch marker encountered`. This broke every `PT…`
(exact-duration) jurisdiction, where no deadline local activity sat between the intake's
context activity and the first transition. The first activation is in the run's first task
live and on replay, whatever else the task holds (updates, timers, retried local activities,
a continue-as-new's carried state).

Runs started before this rule have no `v5` marker. They ask the old patches lazily, where and
when they always did (`local_writes` …), so their recorded histories replay unchanged. A run
whose first transition's marker landed in its second task under that old code cannot replay;
docs/operations.md says how to reset it.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

V5 = "v5"  # patches asked up front; extensions from the deadline's own day; 督办 after a missed resolve
V6 = "timer-clock"  # what falls due is decided at the fired timer's own due time, never workflow.now()
V7 = "rulebook-2"  # issues registered under rule book 2 (domain/authority.py): feedback only from a recorded resident, urges only to the issue's units


@dataclass(frozen=True)
class IssuePatches:
    v5: bool
    timer_clock: bool
    rulebook_2: bool

    @staticmethod
    def ask() -> "IssuePatches":
        """Call in `__init__`, once per run."""
        v5 = workflow.patched(V5)
        # A run without v5 predates the rule: it asks no later patch either (its history has
        # no marker for one, and asking would only answer False).
        return IssuePatches(v5=v5, timer_clock=v5 and workflow.patched(V6), rulebook_2=v5 and workflow.patched(V7))

    # Changes made before the rule: asked lazily by runs that predate it, implied by v5.
    def local_writes(self) -> bool:
        """A move's read-model writes and notifications run as local activities."""
        return self.v5 or workflow.patched("local-writes")

    def concurrent_writes(self) -> bool:
        """(Runs without local writes) a move's writes run at once, awaited together."""
        return self.v5 or workflow.patched("concurrent-writes")

    def current_cycle(self) -> bool:
        """Only the departments of the current dispatch count as resolvers."""
        return self.v5 or workflow.patched("resolvers-of-the-current-cycle")

    # Changes under the rule.
    @property
    def rulebook(self) -> int:
        """The rule book (domain/authority.py) a new issue is registered under."""
        return 2 if self.rulebook_2 else 1

    @property
    def supervises_missed_resolve(self) -> bool:
        """After a missed resolve deadline: a 督办 every working day until resolved."""
        return self.v5
