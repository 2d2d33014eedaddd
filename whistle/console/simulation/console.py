"""What `whistle simulate` shows: a progress bar over simulated time, then the red/black lists
and where the page and figures were written."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from whistle.console.simulation.run import Simulation, simulate


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that SIGTERM, like Ctrl-C, stops the servers the run started


def run(jurisdiction_file: Path, issues: int, quarter: str | None, seed: int, out_dir: Path) -> Simulation:
    signal.signal(signal.SIGTERM, _interrupted)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("issues closed"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as progress:
        task = progress.add_task("starting", total=issues)

        def on_progress(at: datetime, closed: int, total: int) -> None:
            progress.update(task, completed=closed, description=at.strftime("%Y-%m-%d %H:%M"))

        return asyncio.run(simulate(jurisdiction_file, issues, quarter, seed, out_dir, on_progress=on_progress))


def report(sim: Simulation, console: Console) -> None:
    """The red/black lists, then what happened and where the page and figures were written."""
    table = sim.league.table
    for kind, title in (("department", "区级职能部门"), ("street", "街道")):
        t = Table(title=f"{sim.scenario.quarter} 红黑榜 · {title}", title_justify="left")
        for column in ("排名", "单位", "办件量", "综合得分", "区间", "榜单", "说明"):
            t.add_column(column, justify="right" if column in ("排名", "办件量", "综合得分", "区间") else "left")
        for r in [r for r in table.rows if r.unit_kind == kind] if table else []:
            mark = {"red": "[bold red]红榜[/]", "black": "[bold]黑榜[/]"}.get(r.listed or "", "")
            span = f"{r.score_interval[0]:.1f}–{r.score_interval[1]:.1f}" if r.score_interval else ""
            t.add_row(str(r.rank) if r.ranked else "-", r.name or r.unit_id, str(r.volume), f"{r.score:.1f}", span,
                      mark, "；".join(r.reasons))
        console.print(t)
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(sim.outcomes.items()))
    console.print(
        f"{len(sim.scenario.issues)} issues ({outcomes}); slow departments: {', '.join(sim.scenario.slow())}\n"
        f"{sum(sim.actions.values())} actions, {sim.notifications} notifications, "
        f"{sim.seconds:.0f} s: {sim.acting:.0f} s acting, {sim.skipping:.0f} s moving the clock ({sim.steps} steps)\n"
        f"page:    {sim.html}\nfigures: {sim.json}\n"
        f"monthly briefings: {', '.join(f'{b.month} ({b.issues} issues)' for b in sim.briefings)}, "
        f"in {sim.html.parent}/briefing-<month>.html",
        highlight=False,
    )
