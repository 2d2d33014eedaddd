"""The `whistle` command."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from whistle.console.common import ConfigOpt, DataDirOpt, client_settings, jurisdiction_zone, refusals
from whistle.console.common import fail as _fail
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
    from whistle.console.dev import DevError, run_dev
    from whistle.jurisdiction import JurisdictionError

    try:
        settings = load_settings(config, data_dir=data_dir, temporal_port=temporal_port, ui_port=ui_port, api_port=api_port)
    except Exception as exc:  # pydantic's message names the bad setting
        _fail(str(exc))
    configure_logging(settings.log_format, settings.log_level)
    from whistle.process import run_until_signalled

    try:
        run_until_signalled(lambda stop: run_dev(settings, stop))
    except (DevError, JurisdictionError) as exc:
        _fail(str(exc))


def _join_dev_stack(data_dir: Path | None, metrics_setting: str):
    """With --data-dir, a worker or API joins the dev stack running there; settings given
    explicitly (environment) still win. The stack's own worker and API hold the default metrics
    addresses: unless `metrics_setting` is set, this process serves its metrics on a free port.
    Returns what prints (on stdout) where the process is, or None when it joins nothing."""
    if data_dir is None:
        return None
    from whistle.console.stack import dev_stack_environment

    with refusals():
        for name, value in dev_stack_environment(data_dir).items():
            os.environ.setdefault(name, value)
    os.environ.setdefault(metrics_setting, "127.0.0.1:0")
    return lambda where: typer.echo(f"beside the whistle dev in {data_dir}: {where}")


@app.command()
def worker(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Run the worker against configured servers (deploy/whistle.env), or with --data-dir
    beside a running `whistle dev` (its metrics on a free port, printed)."""
    if config is not None:
        os.environ["WHISTLE_CONFIG"] = str(config)
    announce = _join_dev_stack(data_dir, "WHISTLE_METRICS_ADDRESS")
    import worker as worker_module

    worker_module.main(announce)


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
    beside a running `whistle dev` (give it another WHISTLE_API_PORT; its metrics on a free
    port, printed)."""
    from api.app import serve
    from whistle.process import run_until_signalled

    announce = _join_dev_stack(data_dir, "WHISTLE_API_METRICS_ADDRESS")
    settings = load_settings(config)
    configure_logging(settings.log_format, settings.log_level)
    run_until_signalled(lambda stop: serve(settings, stop, announce))


from whistle.console.issues import app as issue_app

app.add_typer(issue_app, name="issue")

schedules_app = typer.Typer(no_args_is_help=True, help="The quarterly Schedule (evaluation round, then red/black list).")
app.add_typer(schedules_app, name="schedules")


def _with_client(settings, fn, keyring: bool = True):
    """Run `fn(client)` against the configured Temporal; any refusal is one line. The client
    attests updates when this install's actor key is at hand (whistle dev's is in its data dir)."""
    from whistle.temporal import TemporalUnreachable, connect

    async def run():
        keys = settings.keyring() if keyring else None
        actors = settings.actor_key_ring() if keyring and (settings.actor_keys or settings.actor_key_file) else None
        try:
            client = await connect(settings.temporal_address, settings.temporal_namespace, keys, actors)
        except TemporalUnreachable as exc:
            raise TemporalUnreachable(f"{exc}: is `whistle dev` running? give --data-dir, or set WHISTLE_TEMPORAL_ADDRESS") from None
        return await fn(client)

    with refusals():
        return asyncio.run(run())


@schedules_app.command("apply")
def schedules_apply(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create the Schedules (quarterly, monthly briefing), or update them to this version's
    definitions; says of each what it did: created, updated, or unchanged when it already is."""
    from whistle.schedules import BRIEFING_FIRE_HOUR, BRIEFING_SCHEDULE_ID, FIRE_HOUR, SCHEDULE_ID, apply_schedules

    settings = client_settings(config, data_dir)
    tz = jurisdiction_zone(settings).key
    done = _with_client(settings, lambda c: apply_schedules(c, settings.task_queue, tz))
    when = {SCHEDULE_ID: f"{FIRE_HOUR:02d}:00 {tz} on 1 January, April, July, October",
            BRIEFING_SCHEDULE_ID: f"{BRIEFING_FIRE_HOUR:02d}:00 {tz} on the 1st of each month"}
    for schedule_id, what in done.items():
        typer.echo(f"schedule {schedule_id}: {what} ({when[schedule_id]})")


@schedules_app.command("backfill")
def schedules_backfill(
    from_: Annotated[str, typer.Option("--from", help="first quarter, e.g. 2026Q1")],
    to: Annotated[str, typer.Option("--to", help="last quarter, e.g. 2026Q3")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the quarterly workflows for past quarters (those already run are left as they are);
    a quarter that has not ended is refused."""
    from whistle.schedules import backfill, quarter_range, refuse_unended

    settings = client_settings(config, data_dir)
    tz = jurisdiction_zone(settings).key
    with refusals():  # before reaching Temporal: nothing starts for a quarter still running
        refuse_unended(quarter_range(from_, to), tz)
    quarters = _with_client(settings, lambda c: backfill(c, from_, to))
    typer.echo(f"backfilled: {', '.join(quarters)}")


ApiUrlOpt = Annotated[str | None, typer.Option("--api-url", help="default WHISTLE_API_URL or the data directory's whistle dev")]


def _console():
    """rich output for tables: on a terminal its width; piped, wide enough for every column."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


league_app = typer.Typer(no_args_is_help=True, help="The red/black list.")
app.add_typer(league_app, name="league")


def not_published_why(period: str, progress: dict | None, tz, now: datetime | None = None) -> str:
    """Why a period has no published list, from where the API says it stands (its evaluation
    rounds, a draft under review): what is under way and when the list is expected, or, for a
    period that has ended with nothing started, how to start it."""
    from schemas.period import is_quarter, period_bounds, quarters_of_year
    from whistle.console.common import local_time
    from whistle.schedules import fire_time

    progress = progress if isinstance(progress, dict) else {}
    rounds = {r["quarter"]: r for r in progress.get("rounds") or []}
    last = period if is_quarter(period) else f"{period}Q4"  # the year-end list follows its fourth round
    when = lambda iso: local_time(iso, tz).replace("T", " ")  # noqa: E731
    if progress.get("draft"):
        return (f"draft {progress['draft']} awaits the supervisor's review (approve or send back: "
                f"POST /v1/league/{period}/review); it is published when approved, or by league.on_no_answer")
    under_way = [r for r in rounds.values() if r["status"] == "open"]
    if under_way:
        closing = max(r["closes_at"] for r in under_way)
        return (f"the reverse-evaluation round {', '.join(r['quarter'] for r in under_way)} is under way and closes "
                f"{when(closing)}: the list is computed then and published once the supervisor approves the draft")
    missing = [q for q in ([period] if is_quarter(period) else quarters_of_year(int(period))) if q not in rounds]
    if not missing:
        return f"the evaluation round {last} closed {when(rounds[last]['closed_at'] or rounds[last]['closes_at'])}: the list is being computed"
    _, end = period_bounds(period, tz.key)
    if end > (now or datetime.now(tz)):
        return (f"{period} ends {end:%Y-%m-%d %H:%M}; the quarterly schedule starts {last}'s reverse-evaluation round at "
                f"{fire_time(last, tz.key):%Y-%m-%d %H:%M} ({tz.key}), and the list is published after that round closes "
                f"and the supervisor approves it")
    rounds_of = f"round of {missing[0]} has" if len(missing) == 1 else f"rounds of {', '.join(missing)} have"
    return (f"the reverse-evaluation {rounds_of} not run (the quarterly schedule starts a quarter's when the "
            f"next begins): run `whistle schedules backfill --from {missing[0]} --to {missing[-1]}`")


@league_app.command("show")
def league_show(
    period: Annotated[str, typer.Argument(help="a quarter (2026Q3) or a year (2026)")],
    api_url: ApiUrlOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a published red/black list (GET /v1/league/PERIOD)."""
    from rich.table import Table

    from schemas.period import PERIOD_PATTERN
    from whistle.console.issues import _call

    if not re.fullmatch(PERIOD_PATTERN, period):
        _fail(f"PERIOD is a quarter (2026Q3) or a year (2026), not {period!r}")
    settings = client_settings(None, data_dir)
    explain = {404: lambda body: f"no red/black list is published for {period} yet: "
                                 f"{not_published_why(period, body.get('detail'), jurisdiction_zone(settings))}"}
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

    from whistle.console.issues import _call

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
    from whistle.console.simulation.console import report, run
    from whistle.console.simulation.run import SimulationError

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
def migrate(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Apply the read model's pending migrations (WHISTLE_DATABASE_URL, or the read model of the
    `whistle dev` in --data-dir) and exit: the one-shot job of a deployment. Safe to run again,
    and beside running workers (an advisory lock)."""
    from whistle.db.migrate import migrate as apply
    from whistle.db.pool import connect

    settings = client_settings(config, data_dir)
    if not settings.database_url:
        _fail("WHISTLE_DATABASE_URL is not set: migrations need the read model (or give --data-dir of a running whistle dev)")

    async def run() -> list[int]:
        conn = await connect(settings.database_url)
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
    from whistle.console.secrets import SecretsError, init_secrets
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
    from whistle.console.common import refusal

    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:
        # The one place a known refusal escaping any command (a jurisdiction file, a setting, a
        # key, a taken port, a server that does not answer) becomes one line, not a traceback.
        line = refusal(exc)
        if line is None:
            raise
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        code = 1
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
    data_dir: DataDirOpt = None,
) -> None:
    """Print the `--headers` value that attests this update's actor (needs WHISTLE_ACTOR_KEYS or
    WHISTLE_ACTOR_KEY_FILE, or the actor key of the `whistle dev` in --data-dir), good for a few
    minutes: `temporal workflow update execute -w ID --name N --update-id U --input "$IN" --headers
    "$(whistle actor sign -w ID --name N --update-id U --input "$IN")"`; with `--start IssueWorkflow`,
    that of a `temporal workflow start`."""
    from whistle.attest import NoActorKey, cli_header

    settings = client_settings(config, data_dir)
    try:
        typer.echo(cli_header(settings.actor_key_ring(), workflow_id, input, name, update_id, start))
    except ValueError as exc:  # no key, a bad key, input that is not JSON, no update id
        _fail(f"{exc}, or give --data-dir of a running whistle dev" if isinstance(exc, NoActorKey) else str(exc))


if __name__ == "__main__":
    main()
