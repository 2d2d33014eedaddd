"""The bare Temporal reference of bench/lifecycle.py, in a module of its own: the workflow
sandbox re-imports it, so it imports nothing but temporalio and pydantic."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow


class Plan(BaseModel):
    updates: int
    activities_per_update: list[int]
    local_per_update: list[int]


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


@workflow.defn(name="BareReference")
class BareReference:
    """The same shape as an issue, with nothing in it: per update, a deadline timer that the
    update cancels, then that step's local activities and activities, before the update returns."""

    def __init__(self) -> None:
        self.seen = 0
        self.done = 0

    @workflow.run
    async def run(self, plan: Plan) -> int:
        for step in range(plan.updates):
            # A deadline timer per step, cancelled by the update, as an issue's loop does.
            timer = asyncio.ensure_future(workflow.sleep(timedelta(hours=1)))
            await workflow.wait_condition(lambda: self.seen > step)
            timer.cancel()
            for _ in range(plan.local_per_update[step]):
                await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=10))
            for _ in range(plan.activities_per_update[step]):
                await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=10))
            self.done = step + 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.seen

    @workflow.update
    async def step(self) -> int:
        """Returns when its step's work is done, as an issue's update returns the new state."""
        self.seen += 1
        target = self.seen
        await workflow.wait_condition(lambda: self.done >= target)
        return self.seen




@workflow.defn(name="BareTimers")
class BareTimers:
    """What an open issue waits through, with nothing in it: reminders at half and four fifths
    of its deadline (two local activities each, as an issue writes and notifies), then the
    deadline. Returns how late the deadline timer fired, in seconds."""

    @workflow.run
    async def run(self, due_seconds: int) -> float:
        start = workflow.now()
        due = timedelta(seconds=due_seconds)
        for fraction in (0.5, 0.8):
            await workflow.sleep(max(start + due * fraction - workflow.now(), timedelta(0)))
            await asyncio.gather(*(workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=30))
                                   for _ in range(2)))
        await workflow.sleep(max(start + due - workflow.now(), timedelta(0)))
        return (workflow.now() - start - due).total_seconds()
