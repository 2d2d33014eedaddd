"""The `whistle` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from whistle.config import load_settings
from whistle.logging import configure_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help="whistle: 吹哨报到 issue workflows on Temporal.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file of settings (keys as in WHISTLE_* without the prefix, lower case)")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def dev(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="where Temporal's SQLite file and PostgreSQL live")] = None,
    config: ConfigOpt = None,
    temporal_port: Annotated[int | None, typer.Option("--temporal-port")] = None,
    ui_port: Annotated[int | None, typer.Option("--ui-port")] = None,
    api_port: Annotated[int | None, typer.Option("--api-port")] = None,
) -> None:
    """Run the whole stack on embedded defaults: Temporal dev server, PostgreSQL, worker."""
    from whistle.dev import DevError, run_dev
    from whistle.jurisdiction import JurisdictionError

    try:
        settings = load_settings(config, data_dir=data_dir, temporal_port=temporal_port, ui_port=ui_port, api_port=api_port)
    except Exception as exc:  # pydantic's message names the bad setting
        _fail(str(exc))
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(run_dev(settings))
    except (DevError, JurisdictionError) as exc:
        _fail(str(exc))


@app.command()
def worker(config: ConfigOpt = None) -> None:
    """Run the worker against configured servers (WHISTLE_TEMPORAL_ADDRESS, WHISTLE_DATABASE_URL)."""
    import os

    if config is not None:
        os.environ["WHISTLE_CONFIG"] = str(config)
    import worker as worker_module

    worker_module.main()


@app.command("search-attributes")
def search_attributes(config: ConfigOpt = None) -> None:
    """Register the contract's search attributes on the configured Temporal namespace (idempotent)."""
    from whistle.temporal import connect, ensure_search_attributes

    settings = load_settings(config)

    async def run() -> list[str]:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        return await ensure_search_attributes(client, client.namespace)

    added = asyncio.run(run())
    typer.echo(f"added: {', '.join(added)}" if added else "all search attributes already registered")


@app.command()
def api(config: ConfigOpt = None) -> None:
    """Run the HTTP API against configured servers (WHISTLE_TEMPORAL_ADDRESS, WHISTLE_DATABASE_URL)."""
    import uvicorn

    from api.app import app_from_settings

    settings = load_settings(config)
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(app_from_settings(settings), host=settings.host, port=settings.api_port, log_config=None)


from whistle.cli_issues import app as issue_app

app.add_typer(issue_app, name="issue")

schedules_app = typer.Typer(no_args_is_help=True, help="The quarterly Schedule (evaluation round, then red/black list).")
app.add_typer(schedules_app, name="schedules")


def _with_client(settings, fn):
    from whistle.temporal import connect_settings

    async def run():
        client = await connect_settings(settings, actors=bool(settings.actor_keys or settings.actor_key_file))
        return await fn(client)

    return asyncio.run(run())


@schedules_app.command("apply")
def schedules_apply(config: ConfigOpt = None) -> None:
    """Create the quarterly Schedule, or update it to this version's definition (idempotent)."""
    from whistle.schedules import SCHEDULE_ID, apply_schedules

    settings = load_settings(config)
    done = _with_client(settings, lambda c: apply_schedules(c, settings.task_queue))
    typer.echo(f"schedule {SCHEDULE_ID}: {done} (09:00 Asia/Shanghai on 1 January, April, July, October)")
    typer.echo("schedule whistle-monthly-briefing: applied (08:00 Asia/Shanghai on the 1st of each month)")


@schedules_app.command("backfill")
def schedules_backfill(
    from_: Annotated[str, typer.Option("--from", help="first quarter, e.g. 2026Q1")],
    to: Annotated[str, typer.Option("--to", help="last quarter, e.g. 2026Q3")],
    config: ConfigOpt = None,
) -> None:
    """Run the quarterly workflows for past quarters (those already run are left as they are)."""
    from whistle.schedules import backfill

    settings = load_settings(config)
    try:
        quarters = _with_client(settings, lambda c: backfill(c, from_, to))
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"backfilled: {', '.join(quarters)}")


league_app = typer.Typer(no_args_is_help=True, help="The red/black list.")
app.add_typer(league_app, name="league")


@league_app.command("show")
def league_show(
    period: str,
    api_url: Annotated[str | None, typer.Option("--api-url")] = None,
) -> None:
    """Print a published red/black list (GET /v1/league/PERIOD)."""
    from whistle.cli_issues import _call

    t = _call("GET", f"/v1/league/{period}", api_url, None)
    for kind, title in (("departments", "区级职能部门"), ("streets", "街道")):
        typer.echo(f"\n{period} {title}")
        for r in t[kind]:
            mark = {"red": "红榜", "black": "黑榜"}.get(r.get("listed") or "", "")
            rank = f"{r['rank']:>3}" if r.get("ranked", True) else "  -"
            lo, hi = r.get("score_interval") or (r["score"], r["score"])
            note = "样本不足" if not r.get("ranked", True) else "；".join(r.get("reasons") or []) if r.get("listed") else ""
            typer.echo(f"{rank} {r.get('name') or r['unit_id']:<16} {r['score']:>6.1f} [{lo:5.1f}–{hi:5.1f}] "
                       f"n={r['volume']:<4} {mark} {note}".rstrip())
        for a in t.get("adjustments") or []:
            typer.echo(f"  调整 {a['kind']} {a['unit_id']} {a.get('issue_id') or a.get('community_id') or ''}: "
                       f"{a['reason']} ({a['by']}, draft {a['draft']})")


briefing_app = typer.Typer(no_args_is_help=True, help="The monthly briefing (月度通报).")
app.add_typer(briefing_app, name="briefing")


@briefing_app.command("show")
def briefing_show(
    month: str,
    api_url: Annotated[str | None, typer.Option("--api-url")] = None,
) -> None:
    """Print a month's briefing (GET /v1/briefings/YYYY-MM)."""
    from whistle.cli_issues import _call

    b = _call("GET", f"/v1/briefings/{month}", api_url, None)
    typer.echo(f"{month} 月度通报: {b['issues']} issues")
    pct = lambda v: "   —" if v is None else f"{v * 100:3.0f}%"  # noqa: E731
    for kind, title in (("departments", "区级职能部门"), ("streets", "街道")):
        typer.echo(f"\n{title}: 派单 按时 超时 未办结 办结率 按时率 不满意 重复投诉")
        for u in b[kind]:
            typer.echo(f"  {u['name']:<14} {u['dispatched']:>4} {u['resolved_on_time']:>4} {u['resolved_late']:>4} "
                       f"{u['still_open']:>4}  {pct(u['completion_rate'])}  {pct(u['on_time_rate'])} "
                       f"{u['dissatisfied']:>3}/{u['answered']:<3} {u['repeat_complaints']:>4}")
    typer.echo("\n高发类别: " + "，".join(f"{c['name']} {c['issues']}" for c in b["top_categories"]))
    typer.echo("热点网格: " + "，".join(f"{h['community']}{h['name']} {h['issues']}" for h in b["hot_spots"]))

@app.command()
def simulate(
    issues: Annotated[int, typer.Option("--issues", min=1, max=100_000, help="issues arriving in the quarter")] = 1000,
    quarter: Annotated[str | None, typer.Option("--quarter", help="YYYYQn, not begun yet (default: the next quarter)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="the same seed gives the same quarter")] = 1,
    out: Annotated[Path | None, typer.Option("--out", help="the page and figures go to OUT/QUARTER-seedS (default: DATA_DIR/simulations)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run a quarter of the jurisdiction through the real workflows in compressed time, then
    publish and print its red/black list."""
    from rich.console import Console

    from schemas.period import is_quarter
    from whistle.jurisdiction import JurisdictionError
    from whistle.simulation.console import report, run
    from whistle.simulation.run import SimulationError

    if quarter is not None and not is_quarter(quarter):
        _fail(f"--quarter must look like 2027Q1, not {quarter!r}")
    settings = load_settings(config)
    configure_logging("console", "ERROR")
    try:
        sim = run(settings.jurisdiction_file, issues, quarter, seed, out or settings.data_dir / "simulations")
    except (SimulationError, JurisdictionError) as exc:
        _fail(str(exc))
    report(sim, Console())


jurisdiction_app = typer.Typer(no_args_is_help=True, help="The jurisdiction data file.")
app.add_typer(jurisdiction_app, name="jurisdiction")


@jurisdiction_app.command("check")
def jurisdiction_check(path: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Validate a jurisdiction file (default: the configured one)."""
    from whistle.jurisdiction import JurisdictionError, load_jurisdiction

    path = path or load_settings().jurisdiction_file
    try:
        j = load_jurisdiction(path)
    except JurisdictionError as exc:
        _fail(str(exc))
    typer.echo(f"{path}: {len(j.units)} units, {len(j.departments)} departments, {len(j.categories)} categories: valid")


def main() -> None:
    app()




actor_app = typer.Typer(no_args_is_help=True, help="Actor attestation for updates sent with the `temporal` CLI.")
app.add_typer(actor_app, name="actor")


@actor_app.command("sign")
def actor_sign(
    workflow_id: Annotated[str, typer.Option("--workflow-id", "-w")],
    name: Annotated[str, typer.Option("--name", help="the update, e.g. urge")],
    input: Annotated[str, typer.Option("--input", "-i", help="the update's input: one JSON object")],
    config: ConfigOpt = None,
) -> None:
    """Print the `--headers` value that attests this update's actor (needs WHISTLE_ACTOR_KEYS or
    WHISTLE_ACTOR_KEY_FILE): `temporal workflow update execute -w ID --name N --input "$IN"
    --headers "$(whistle actor sign -w ID --name N --input "$IN")"`."""
    import json

    from whistle.attest import HEADER

    try:
        keys = load_settings(config).actor_key_ring()
        data = json.loads(input)
    except ValueError as exc:  # no key, a bad key, input that is not JSON
        _fail(str(exc))
    typer.echo(f"{HEADER}={json.dumps(keys.sign(workflow_id, name, [data]))}")


if __name__ == "__main__":
    main()
