"""Simulated time on the time-skipping test server.

Actors (one coroutine per issue, community, supervisor) call `at(t)` to act at simulated time
`t`. When every actor is waiting, the clock moves the server straight to the earliest time
asked for (timers that fall due on the way fire, and the server finishes the work they cause
before it gets there), then lets every actor waiting for that time go at once. Time is locked
while they act, so a step's actions all happen at its instant, give or take the seconds they
take. Times are whole multiples of `step`, so each run takes the same steps: with the same
actors the same seed gives the same run.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment


class Clock:
    def __init__(self, env: WorkflowEnvironment, now: datetime, step: timedelta = timedelta(minutes=30)):
        self.env = env
        self.step = step
        self.now = self.floor(now)
        self._waiting: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._running = 0  # actors not waiting for the clock
        self._idle = asyncio.Event()
        self._failure: BaseException | None = None
        self.steps = 0
        self.skipping = 0.0  # seconds spent moving the server's clock (and the timers on the way)
        self.acting = 0.0  # seconds spent while actors act

    def floor(self, t: datetime) -> datetime:
        epoch = datetime(2000, 1, 1, tzinfo=t.tzinfo)
        return t - (t - epoch) % self.step

    def ceil(self, t: datetime) -> datetime:
        f = self.floor(t)
        return f if f == t else f + self.step

    async def at(self, t: datetime) -> datetime:
        """Wait until simulated time `t` (rounded up to the step); now or past returns at once."""
        t = self.ceil(t)
        if t <= self.now:
            return self.now
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (t, next(self._order), future))
        self._set_running(-1)
        await future
        return self.now

    def _set_running(self, delta: int) -> None:
        self._running += delta
        if self._running == 0:
            self._idle.set()
        else:
            self._idle.clear()

    async def run(
        self, actors: list[Coroutine[Any, Any, Any]], on_step: Callable[[datetime], None] | None = None
    ) -> list[Any]:
        """Run the actors to the end; each actor's result, in order. The first failure stops
        the run and is raised."""
        tasks = [asyncio.create_task(self._actor(a)) for a in actors]
        self._set_running(len(tasks))
        try:
            loop = asyncio.get_running_loop()
            while True:
                began = loop.time()
                await self._idle.wait()
                if self.steps:
                    self.acting += loop.time() - began
                if self._failure is not None:
                    raise self._failure
                if not self._waiting:
                    break
                target = self._waiting[0][0]
                began = loop.time()
                current = await self.env.get_current_time()
                if target > current:
                    await self.env.sleep(target - current)
                self.skipping += loop.time() - began
                self.now = target
                self.steps += 1
                released = 0
                while self._waiting and self._waiting[0][0] == target:
                    _, _, future = heapq.heappop(self._waiting)
                    future.set_result(None)
                    released += 1
                self._set_running(released)
                if on_step is not None:
                    on_step(target)
            return [t.result() for t in tasks]
        finally:
            for t in tasks:
                t.cancel()

    async def _actor(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await coro
        except BaseException as exc:
            self._failure = self._failure or exc
            raise
        finally:
            self._set_running(-1)
            if self._failure is not None:
                self._idle.set()
