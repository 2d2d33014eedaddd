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
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 before the
    # app's own WHISTLE_TRUSTED_PROXIES rule sees the request (api.guard.client_address).
    uvicorn.run(app_from_settings(settings), host=settings.host, port=settings.api_port, log_config=None,
                proxy_headers=False)


from whistle.cli_issues import app as issue_app

app.add_typer(issue_app, name="issue")

schedules_app = typer.Typer(no_args_is_help=True, help="The quarterly Schedule (evaluation round, then red/black list).")
app.add_typer(schedules_app, name="schedules")


def _with_client(settings, fn, keyring: bool = True):
    """Run `fn(client)` against the configured Temporal; any refusal is one line. The client
    attests updates when this install's actor key is at hand (whistle dev's is in its data dir)."""
    from whistle.temporal import connect

    async def run():
        keys = settings.keyring() if keyring else None
        actors = settings.actor_key_ring() if keyring and (settings.actor_keys or settings.actor_key_file) else None
        try:
            client = await connect(settings.temporal_address, settings.temporal_namespace, keys, actors)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot reach Temporal at {settings.temporal_address}: is `whistle dev` running? give --data-dir, or set WHISTLE_TEMPORAL_ADDRESS ({exc})") from None
        return await fn(client)

    with refusals():
        return asyncio.run(run())


@schedules_app.command("apply")
def schedules_apply(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create the quarterly Schedule, or update it to this version's definition (idempotent:
    "unchanged" when it already is)."""
    from whistle.jurisdiction import load_jurisdiction
    from whistle.schedules import SCHEDULE_ID, apply_schedules

    settings = client_settings(config, data_dir)
    tz = load_jurisdiction(settings.jurisdiction_file).timezone
    done = _with_client(settings, lambda c: apply_schedules(c, settings.task_queue, tz))
    typer.echo(f"schedule {SCHEDULE_ID}: {done} (09:00 {tz} on 1 January, April, July, October)")
    typer.echo(f"schedule whistle-monthly-briefing: applied (08:00 {tz} on the 1st of each month)")


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


ApiUrlOpt = Annotated[str | None, typer.Option("--api-url", help="default WHISTLE_API_URL or the data directory's whistle dev")]


def _console():
    """rich output for tables: on a terminal its width; piped, wide enough for every column."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


league_app = typer.Typer(no_args_is_help=True, help="The red/black list.")
app.add_typer(league_app, name="league")


@league_app.command("show")
def league_show(
    period: Annotated[str, typer.Argument(help="a quarter (2026Q3) or a year (2026)")],
    api_url: ApiUrlOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a published red/black list (GET /v1/league/PERIOD)."""
    from rich.table import Table

    from whistle.cli_issues import _call

    from schemas.period import is_quarter

    if is_quarter(period):
        why = (f"it is computed after the quarter's reverse-evaluation round closes, which the quarterly schedule starts "
               f"when the next quarter begins (09:00 on its first day, the jurisdiction's time); for a quarter that has ended, run "
               f"`whistle schedules backfill --from {period} --to {period}`")
    else:
        why = (f"the year-end list is computed with the fourth quarter's, when {period}Q4's evaluation round closes; "
               f"for a year that has ended, run `whistle schedules backfill --from {period}Q4 --to {period}Q4`")
    explain = {404: f"no red/black list is published for {period} yet: {why}"}
    t = _call("GET", f"/v1/league/{period}", api_url, None, data_dir, explain=explain)
    console = _console()
    for kind, title in (("departments", "区级职能部门"), ("streets", "街道")):
        # rich measures every cell in terminal columns, so Chinese names line up.
        table = Table(title=f"{period} 红黑榜 · {title}", title_justify="left")
        for column, justify in (("排名", "right"), ("单位", "left"), ("综合得分", "right"), ("区间", "right"),
                                ("样本", "right"), ("榜单", "left"), ("依据", "left")):
            table.add_column(column, justify=justify)
        for r in t[kind]:
            mark = {"red": "红榜", "black": "黑榜"}.get(r.get("listed") or "", "")
            rank = str(r["rank"]) if r.get("ranked", True) else "-"
            lo, hi = r.get("score_interval") or (r["score"], r["score"])
            note = "样本不足" if not r.get("ranked", True) else "；".join(r.get("reasons") or []) if r.get("listed") else ""
            table.add_row(rank, r.get("name") or r["unit_id"], f"{r['score']:.1f}", f"{lo:.1f}–{hi:.1f}",
                          str(r["volume"]), mark, note)
        console.print(table)
    for a in t.get("adjustments") or []:
        console.print(f"调整 {a['kind']} {a['unit_id']} {a.get('issue_id') or a.get('community_id') or ''}: "
                      f"{a['reason']} ({a['by']}, draft {a['draft']})")


briefing_app = typer.Typer(no_args_is_help=True, help="The monthly briefing (月度通报).")
app.add_typer(briefing_app, name="briefing")


@briefing_app.command("show")
def briefing_show(
    month: str,
    api_url: ApiUrlOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a month's briefing (GET /v1/briefings/YYYY-MM)."""
    from rich.table import Table

    from whistle.cli_issues import _call

    b = _call("GET", f"/v1/briefings/{month}", api_url, None, data_dir,
              explain={404: f"no briefing for {month} yet: the monthly schedule makes it at 08:00 on the next month's first day"})
    console = _console()
    console.print(f"{month} 月度通报: {b['issues']} issues")
    pct = lambda v: "—" if v is None else f"{v * 100:.0f}%"  # noqa: E731
    for kind, title in (("departments", "区级职能部门"), ("streets", "街道")):
        table = Table(title=title, title_justify="left")
        for column in ("单位", "派单", "按时", "超时", "未办结", "办结率", "按时率", "不满意", "重复投诉"):
            table.add_column(column, justify="left" if column == "单位" else "right")
        for u in b[kind]:
            table.add_row(u["name"], str(u["dispatched"]), str(u["resolved_on_time"]), str(u["resolved_late"]),
                          str(u["still_open"]), pct(u["completion_rate"]), pct(u["on_time_rate"]),
                          f"{u['dissatisfied']}/{u['answered']}", str(u["repeat_complaints"]))
        console.print(table)
    console.print("高发类别: " + "，".join(f"{c['name']} {c['issues']}" for c in b["top_categories"]))
    console.print("热点网格: " + "，".join(f"{h['community']}{h['name']} {h['issues']}" for h in b["hot_spots"]))

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




actor_app = typer.Typer(no_args_is_help=True, help="Actor attestation for updates sent with the `temporal` CLI.")
app.add_typer(actor_app, name="actor")


@actor_app.command("sign")
def actor_sign(
    workflow_id: Annotated[str, typer.Option("--workflow-id", "-w")],
    input: Annotated[str, typer.Option("--input", "-i", help="the update's (or start's) input: one JSON object")],
    name: Annotated[str | None, typer.Option("--name", help="the update, e.g. urge")] = None,
    update_id: Annotated[str | None, typer.Option("--update-id", help="the update's id: give the temporal CLI the same")] = None,
    start: Annotated[str | None, typer.Option("--start", help="sign a start of this workflow type instead, e.g. IssueWorkflow")] = None,
    config: ConfigOpt = None,
) -> None:
    """Print the `--headers` value that attests this update's actor (needs WHISTLE_ACTOR_KEYS or
    WHISTLE_ACTOR_KEY_FILE), good for a few minutes: `temporal workflow update execute -w ID
    --name N --update-id U --input "$IN" --headers "$(whistle actor sign -w ID --name N
    --update-id U --input "$IN")"`; with `--start IssueWorkflow`, that of a `temporal workflow start`."""
    from whistle.attest import cli_header

    try:
        typer.echo(cli_header(load_settings(config).actor_key_ring(), workflow_id, input, name, update_id, start))
    except ValueError as exc:  # no key, a bad key, input that is not JSON, no update id
        _fail(str(exc))


if __name__ == "__main__":
    main()
