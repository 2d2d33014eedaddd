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

from whistle.simulation.run import Simulation, simulate


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
        for column in ("排名", "单位", "综合得分", "榜单", "说明"):
            t.add_column(column, justify="right" if column in ("排名", "综合得分") else "left")
        for r in [r for r in table.rows if r.unit_kind == kind] if table else []:
            mark = {"red": "[bold red]红榜[/]", "black": "[bold]黑榜[/]"}.get(r.listed or "", "")
            t.add_row(str(r.rank), r.name or r.unit_id, f"{r.score:.1f}", mark, "；".join(r.reasons))
        console.print(t)
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(sim.outcomes.items()))
    console.print(
        f"{len(sim.scenario.issues)} issues ({outcomes}); slow departments: {', '.join(sim.scenario.slow())}\n"
        f"{sum(sim.actions.values())} actions, {sim.notifications} notifications, "
        f"{sim.seconds:.0f} s: {sim.acting:.0f} s acting, {sim.skipping:.0f} s moving the clock ({sim.steps} steps)\n"
        f"page:    {sim.html}\nfigures: {sim.json}",
        highlight=False,
    )
