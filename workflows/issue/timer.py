"""The loop's timer: set for the next reminder or due time of the issue's running clocks; a
handler that moves that time, or a history that asks for a new run, wakes the loop to set it
again."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.deadlines import next_due_time, running
    from schemas.issue import Stage
    from schemas.labels import DEADLINE, local_time_named, unit_name
    from workflows.issue.run import IssueRun

_TICK = timedelta(milliseconds=1)


class LoopTimer:
    def __init__(self, issue: IssueRun) -> None:
        self.issue = issue
        self.at: datetime | None = None  # what the timer waits for
        self._wake = False

    def poke(self, continue_as_new: bool) -> None:
        """After a transition: wake the loop when the next due time moved, or history asks
        for a new run."""
        if self._next() != self.at or continue_as_new:
            self._wake = True

    async def wait(self) -> bool:
        """Set the timer and wait for it or a wake; whether the timer fired. Always a timer when
        something falls due, even one already due (1 ms): whether a timer is started must not
        hang on how late this line runs."""
        self.at = self._next()
        self._wake = False
        timeout = self._length()
        if self.issue.patches.timer_clock:
            return await self._wait_timer_or_wake(timeout)
        try:
            await workflow.wait_condition(self._woken, timeout=timeout, timeout_summary=self._summary())
        except asyncio.TimeoutError:
            return True
        return False

    def _woken(self) -> bool:
        return self._wake or self.issue.state.stage == Stage.closed

    async def _wait_timer_or_wake(self, timeout: timedelta | None) -> bool:
        """The timer is a task of its own, so that a timer that fired in the same task as an
        update's wake still counts as fired (with wait_condition's time-out the wake won, and
        what fell due waited for another timer, while the next update could slip in before it)."""
        if timeout is None:
            await workflow.wait_condition(self._woken)
            return False
        timer = asyncio.ensure_future(workflow.sleep(timeout, summary=self._summary()))
        await workflow.wait_condition(lambda: self._woken() or timer.done())
        fired = timer.done()
        if not fired:
            timer.cancel()
        return fired

    def _next(self) -> datetime | None:
        return next_due_time(self.issue.state.deadlines)

    def _length(self) -> timedelta | None:
        """How long the timer waits. Only its length may read workflow.now(): a timer fired late
        must not make the next one later still."""
        if self.at is None:
            return None
        if self.issue.patches.timer_clock:
            return max(self.at - workflow.now(), _TICK)
        # Runs before v5 started no timer for what was due already; v5 always starts one.
        return max(self.at - self.issue.now, _TICK if self.issue.patches.v5 else timedelta(0))

    def _summary(self) -> str:
        """What the timer waits for, as the Web UI shows it: `受理时限 lvhua 2026-11-27 24:00`."""
        open_ = running(self.issue.state.deadlines)
        if not open_:
            return "等待"
        d = min(open_, key=lambda d: (d.due_at, d.key))
        return f"{DEADLINE.get(d.kind, d.kind)} {unit_name(d.unit_id)} {local_time_named(d.due_at, self.issue.state.context.timezone)}"
