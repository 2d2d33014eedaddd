"""`whistle simulate`: a quarter of the demo district through the real workflows, worker and
read model, on the time-skipping test server (its own, thrown away after) and a PostgreSQL of
its own; ends with the published red/black list, written as JSON and as the HTML page."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner

from activities.notifier import MemoryNotifier
from api.briefing import render_briefing
from api.league import render_page, table_of
from schemas.briefing import Briefing, BriefingInput, month_of
from schemas.evaluation import EvaluationInput
from schemas.issue import IssueState
from schemas.league import LeagueInput, LeagueState
from schemas.period import next_quarter, period_bounds, quarter_of
from whistle.attest import ActorAttestation, ActorKeys
from whistle.codec import Keyring
from whistle.db.throwaway import throwaway_read_model
from whistle.console.dev import find_binary
from whistle.jurisdiction import load_jurisdiction
from whistle.console.simulation.actors import People
from whistle.console.simulation.clock import Clock
from whistle.console.simulation.scenario import STEP, OfficeHours, Scenario, build_scenario
from whistle.temporal import data_converter, ensure_search_attributes, quiet_runtime
from whistle.workdays import WorkingCalendar
from workflows.briefing import MonthlyBriefingWorkflow
from workflows.evaluation import ReverseEvaluationWorkflow
from workflows.league import LeagueTableWorkflow


class SimulationError(Exception):
    pass


@dataclass
class Simulation:
    scenario: Scenario
    league: LeagueState
    outcomes: Counter[str]
    actions: Counter[str]
    notifications: int
    steps: int
    seconds: float
    acting: float  # seconds while people acted
    skipping: float  # seconds while the server moved its clock and fired the timers on the way
    html: Path
    json: Path
    briefings: list[Briefing]

    def summary(self) -> dict[str, Any]:
        """What the seed decides: the same seed gives the same summary."""
        table = self.league.table
        return {
            "quarter": self.scenario.quarter,
            "seed": self.scenario.seed,
            "issues": len(self.scenario.issues),
            "slow_departments": self.scenario.slow(),
            "prompt_departments": self.scenario.prompt(),
            "outcomes": dict(sorted(self.outcomes.items())),
            "actions": dict(sorted(self.actions.items())),
            "rows": [r.model_dump(mode="json") for r in table.rows] if table else [],
            "briefings": [b.model_dump(mode="json", exclude={"computed_at", "announced_at"}) for b in self.briefings],
        }


async def simulate(
    jurisdiction_file: Path,
    issues: int,
    quarter: str | None,
    seed: int,
    out_dir: Path,  # the page and figures go to out_dir/QUARTER-seedS
    on_progress: Callable[[datetime, int, int], None] | None = None,
    keyring: Keyring | None = None,
    before_shutdown: Callable[[Client, Scenario], Awaitable[None]] | None = None,
) -> Simulation:
    """`before_shutdown` sees the server before it goes (tests.record_corpus keeps every
    workflow's history), `keyring` the key its payloads are encrypted with."""
    began = time.monotonic()
    j = load_jurisdiction(jurisdiction_file)
    calendar = WorkingCalendar(j.calendar, j.timezone)
    keyring = keyring or Keyring.parse(Keyring.new_entry("sim-1"))  # throwaway: so is the server
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(keyring), test_server_existing_path=str(find_binary("temporal-test-server")),
        # A throwaway key too; the server's clock skips ahead of the wall clock: start times not compared.
        interceptors=[ActorAttestation(ActorKeys.parse(Keyring.new_entry("sim-actor-1")), check_start_times=False)],
        runtime=quiet_runtime(),
    )
    try:
        now = await env.get_current_time()
        quarter = quarter or next_quarter(quarter_of(now, j.timezone))
        start, end = period_bounds(quarter, j.timezone)
        if start <= now:
            raise SimulationError(
                f"{quarter} has begun already: the simulation's server starts at today's date and its clock "
                f"only moves forward; choose {next_quarter(quarter_of(now, j.timezone))} or later"
            )
        await ensure_search_attributes(env.client, "default")
        scenario = build_scenario(j, quarter, issues, seed, calendar)
        async with throwaway_read_model(j) as pool:
            notifier = MemoryNotifier()
            task_queue = f"simulate-{uuid.uuid4().hex[:8]}"
            from worker import build_worker  # imports every workflow

            # Workflows run outside the sandbox: it re-imports the workflow modules for every new
            # workflow and guards against non-deterministic code, which the test suite's sandboxed
            # runs check; a simulation starts a thousand workflows.
            async with build_worker(
                env.client, j, pool, notifier, task_queue,
                workflow_runner=UnsandboxedWorkflowRunner(), max_concurrent_activities=50,
            ):
                await env.sleep(start - now)
                clock = Clock(env, start, STEP)
                office = OfficeHours(calendar, j.timezone)
                people = People(env.client, task_queue, clock, office, scenario, j)
                opens = end + STEP  # the quarterly schedule fires as the next quarter begins

                async def schedule() -> None:
                    # What QuarterlyWorkflow starts as abandoned children; started here because
                    # the time-skipping server stops its clock when a child outlives its parent.
                    await clock.at(opens)
                    for workflow_id, run_, arg, summary in (
                        (f"evaluation-{quarter}", ReverseEvaluationWorkflow.run, EvaluationInput(quarter=quarter), f"逆向考评 {quarter}"),
                        (f"league-{quarter}", LeagueTableWorkflow.run, LeagueInput(period=quarter), f"红黑榜 {quarter}"),
                    ):
                        await env.client.start_workflow(run_, arg, id=workflow_id, task_queue=task_queue, static_summary=summary)

                def step(at: datetime) -> None:
                    if on_progress is not None:
                        on_progress(at, people.closed, len(scenario.issues))

                results = await clock.run(
                    [people.issue(p) for p in scenario.issues]
                    + [schedule(), people.communities(quarter, opens + STEP), people.supervisor(quarter, opens + STEP)],
                    on_step=step,
                )
                # The quarter's monthly briefings, as the monthly Schedule publishes them on the
                # 1st of the next month (figures as they stood at each month's end).
                briefings = [
                    await env.client.execute_workflow(
                        MonthlyBriefingWorkflow.run, BriefingInput(month=month), id=f"briefing-{month}",
                        task_queue=task_queue)
                    for month in months_between(start, end, j.timezone)
                ]
            states: list[IssueState] = results[: len(scenario.issues)]
            league: LeagueState = results[-1]
            table = await table_of(pool, quarter)
        if table is None:
            raise SimulationError(f"the red/black list of {quarter} was not published")
        out_dir = out_dir / f"{quarter}-seed{seed}"
        out_dir.mkdir(parents=True, exist_ok=True)
        html_path = out_dir / f"league-{quarter}.html"
        html_path.write_text(render_page(table, j.timezone), encoding="utf-8")
        json_path = out_dir / f"league-{quarter}.json"
        json_path.write_text(json.dumps(table, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        for b in briefings:
            (out_dir / f"briefing-{b.month}.html").write_text(render_briefing(b, j.timezone), encoding="utf-8")
            (out_dir / f"briefing-{b.month}.json").write_text(b.model_dump_json(indent=2), encoding="utf-8")
        sim = Simulation(
            scenario=scenario, league=league, outcomes=Counter(s.outcome.value for s in states if s.outcome),
            actions=people.actions, notifications=len(notifier.sent), steps=clock.steps, acting=clock.acting, skipping=clock.skipping,
            seconds=time.monotonic() - began, html=html_path, json=json_path, briefings=briefings,
        )
        (out_dir / "summary.json").write_text(json.dumps(sim.summary(), ensure_ascii=False, indent=2), encoding="utf-8")
        if before_shutdown is not None:
            await before_shutdown(env.client, scenario)
        return sim
    finally:
        await env.shutdown()


def months_between(start: datetime, end: datetime, tz: str) -> list[str]:
    """The months `YYYY-MM` that begin in [start, end)."""
    months, at = [], start
    while at < end:
        month = month_of(at, tz)
        if month not in months:
            months.append(month)
        at += timedelta(days=28)
    return months
