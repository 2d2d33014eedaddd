"""The `whistle` command."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from whistle.cli_common import ConfigOpt, DataDirOpt, client_settings, refusals
from whistle.cli_common import fail as _fail
from whistle.config import load_settings
from whistle.logging import configure_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help="whistle: 吹哨报到 issue workflows on Temporal.")


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


def _join_dev_stack(data_dir: Path | None) -> None:
    """With --data-dir, a worker or API joins the dev stack running there; settings given
    explicitly (environment) still win."""
    if data_dir is None:
        return
    from whistle.stack import dev_stack_environment

    with refusals():
        for name, value in dev_stack_environment(data_dir).items():
            os.environ.setdefault(name, value)


@app.command()
def worker(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run the worker against configured servers (deploy/whistle.env), or with --data-dir
    beside a running `whistle dev`."""
    if config is not None:
        os.environ["WHISTLE_CONFIG"] = str(config)
    _join_dev_stack(data_dir)
    import worker as worker_module

    worker_module.main()


@app.command("search-attributes")
def search_attributes(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Register the contract's search attributes on the configured Temporal namespace (idempotent)."""
    from whistle.temporal import ensure_search_attributes

    settings = client_settings(config, data_dir)
    added = _with_client(settings, lambda c: ensure_search_attributes(c, settings.temporal_namespace), keyring=False)
    typer.echo(f"added: {', '.join(added)}" if added else "all search attributes already registered")


@app.command()
def api(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run the HTTP API against configured servers (deploy/whistle.env), or with --data-dir
    beside a running `whistle dev` (give it another WHISTLE_API_PORT)."""
    import uvicorn

    from api.app import app_from_settings

    _join_dev_stack(data_dir)
    settings = load_settings(config)
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(app_from_settings(settings), host=settings.host, port=settings.api_port, log_config=None)


from whistle.cli_issues import app as issue_app

app.add_typer(issue_app, name="issue")

schedules_app = typer.Typer(no_args_is_help=True, help="The quarterly Schedule (evaluation round, then red/black list).")
app.add_typer(schedules_app, name="schedules")


def _with_client(settings, fn, keyring: bool = True):
    """Run `fn(client)` against the configured Temporal; any refusal is one line."""
    from whistle.temporal import connect

    async def run():
        keys = settings.keyring() if keyring else None
        try:
            client = await connect(settings.temporal_address, settings.temporal_namespace, keys)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot reach Temporal at {settings.temporal_address}: is `whistle dev` running? give --data-dir, or set WHISTLE_TEMPORAL_ADDRESS ({exc})") from None
        return await fn(client)

    with refusals():
        return asyncio.run(run())


@schedules_app.command("apply")
def schedules_apply(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create the quarterly Schedule, or update it to this version's definition (idempotent:
    "unchanged" when it already is)."""
    from whistle.schedules import SCHEDULE_ID, apply_schedules

    settings = client_settings(config, data_dir)
    done = _with_client(settings, lambda c: apply_schedules(c, settings.task_queue))
    typer.echo(f"schedule {SCHEDULE_ID}: {done} (09:00 Asia/Shanghai on 1 January, April, July, October)")


@schedules_app.command("backfill")
def schedules_backfill(
    from_: Annotated[str, typer.Option("--from", help="first quarter, e.g. 2026Q1")],
    to: Annotated[str, typer.Option("--to", help="last quarter, e.g. 2026Q3")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the quarterly workflows for past quarters (those already run are left as they are)."""
    from whistle.schedules import backfill

    settings = client_settings(config, data_dir)
    quarters = _with_client(settings, lambda c: backfill(c, from_, to))
    typer.echo(f"backfilled: {', '.join(quarters)}")


league_app = typer.Typer(no_args_is_help=True, help="The red/black list.")
app.add_typer(league_app, name="league")


@league_app.command("show")
def league_show(
    period: Annotated[str, typer.Argument(help="a quarter (2026Q3) or a year (2026)")],
    api_url: Annotated[str | None, typer.Option("--api-url", help="default WHISTLE_API_URL or the data directory's whistle dev")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a published red/black list (GET /v1/league/PERIOD)."""
    from rich.console import Console
    from rich.table import Table

    from whistle.cli_issues import _call

    from schemas.period import is_quarter

    if is_quarter(period):
        why = (f"it is computed after the quarter's reverse-evaluation round closes, which the quarterly schedule starts "
               f"when the next quarter begins (09:00 Asia/Shanghai on its first day); for a quarter that has ended, run "
               f"`whistle schedules backfill --from {period} --to {period}`")
    else:
        why = (f"the year-end list is computed with the fourth quarter's, when {period}Q4's evaluation round closes; "
               f"for a year that has ended, run `whistle schedules backfill --from {period}Q4 --to {period}Q4`")
    explain = {404: f"no red/black list is published for {period} yet: {why}"}
    t = _call("GET", f"/v1/league/{period}", api_url, None, data_dir, explain=explain)
    console = Console(highlight=False)
    for kind, title in (("departments", "区级职能部门"), ("streets", "街道")):
        # rich measures every cell in terminal columns, so Chinese names line up.
        table = Table(title=f"{period} 红黑榜 · {title}", title_justify="left")
        for column, justify in (("排名", "right"), ("单位", "left"), ("综合得分", "right"), ("榜单", "left")):
            table.add_column(column, justify=justify)
        for r in t[kind]:
            mark = {"red": "红榜", "black": "黑榜"}.get(r.get("listed") or "", "")
            table.add_row(str(r["rank"]), r.get("name") or r["unit_id"], f"{r['score']:.1f}", mark)
        console.print(table)


@app.command()
def simulate(
    issues: Annotated[int, typer.Option("--issues", min=1, max=100_000, help="issues arriving in the quarter")] = 1000,
    quarter: Annotated[str | None, typer.Option("--quarter", help="YYYYQn, not begun yet (default: the next quarter)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="the same seed gives the same quarter")] = 1,
    out: Annotated[Path | None, typer.Option("--out", help="the page and figures go to OUT/QUARTER-seedS (default: DATA_DIR/simulations)")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
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
    settings = load_settings(config, data_dir=data_dir)
    configure_logging("console", "ERROR")
    out_dir = (out or settings.data_dir / "simulations").resolve()  # printed: absolute, wherever you run it
    try:
        sim = run(settings.jurisdiction_file, issues, quarter, seed, out_dir)
    except (SimulationError, JurisdictionError) as exc:
        _fail(str(exc))
    report(sim, Console(soft_wrap=True))  # long paths stay whole, to copy


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Apply the read model's pending migrations (WHISTLE_DATABASE_URL) and exit: the one-shot
    job of a deployment. Safe to run again, and beside running workers (an advisory lock)."""
    import asyncpg

    from whistle.db.migrate import migrate as apply

    settings = load_settings(config)
    if not settings.database_url:
        _fail("WHISTLE_DATABASE_URL is not set: migrations need the read model")

    async def run() -> list[int]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await apply(conn)
        finally:
            await conn.close()

    with refusals():
        applied = asyncio.run(run())
    typer.echo(f"applied migrations: {', '.join(map(str, applied))}" if applied else "the read model is up to date")


secrets_app = typer.Typer(no_args_is_help=True, help="The secrets an installation needs.")
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("init")
def secrets_init(
    directory: Annotated[Path, typer.Argument(help="where to write them (created 0700; refused if it holds any of them)")],
    jurisdiction: Annotated[Path | None, typer.Option("--jurisdiction", help="whose units get API principals (default: the configured one)")] = None,
) -> None:
    """Make every secret an installation needs: payload (codec) keys, the actor-attestation key,
    the feedback-token secret, the database passwords, and an API principal with its key for
    every intake channel, unit, the supervisor and ops."""
    from whistle.install_secrets import SecretsError, init_secrets
    from whistle.jurisdiction import load_jurisdiction

    with refusals():
        try:
            written = init_secrets(directory, load_jurisdiction(jurisdiction or load_settings().jurisdiction_file))
        except SecretsError as exc:
            raise ValueError(str(exc)) from None
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo("hand each key in api-keys.yaml to its owner, then delete that file; see deploy/README.md")


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
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    # A process that made a Temporal client can abort while the interpreter finalizes, after the
    # command has done its work (the SDK's core threads outlive it: temporalio/sdk-python#300),
    # turning a success into SIGABRT. Everything is flushed and closed by now; leave directly.
    if isinstance(code, str):  # SystemExit("reason"): said in one line, as Python would
        print(f"error: {code}", file=sys.stderr)
        code = 1
    if "temporalio.client" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 0)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
