"""The `whistle` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Optional

import typer

from whistle.config import load_settings
from whistle.logging import configure_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help="whistle: 吹哨报到 issue workflows on Temporal.")

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML file of settings (keys as in WHISTLE_* without the prefix, lower case)")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def dev(
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="where Temporal's SQLite file and PostgreSQL live")] = None,
    config: ConfigOpt = None,
    temporal_port: Annotated[Optional[int], typer.Option("--temporal-port")] = None,
    ui_port: Annotated[Optional[int], typer.Option("--ui-port")] = None,
    api_port: Annotated[Optional[int], typer.Option("--api-port")] = None,
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
        return await ensure_search_attributes(client, settings.temporal_namespace)

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


from whistle.cli_issues import app as issue_app  # noqa: E402

app.add_typer(issue_app, name="issue")

jurisdiction_app = typer.Typer(no_args_is_help=True, help="The jurisdiction data file.")
app.add_typer(jurisdiction_app, name="jurisdiction")


@jurisdiction_app.command("check")
def jurisdiction_check(path: Annotated[Optional[Path], typer.Argument()] = None) -> None:
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


if __name__ == "__main__":
    main()
