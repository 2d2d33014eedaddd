"""What every `whistle` command shares: the data-directory option, settings completed from the
dev stack, one-line refusals, and times shown in the jurisdiction's local time."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from whistle.config import Settings, load_settings

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file of settings (keys as in WHISTLE_* without the prefix, lower case)")]
DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", help="the whistle dev data directory: the command talks to the stack running there (default WHISTLE_DATA_DIR or .whistle)",
)]


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _one_line(exc: BaseException) -> str:
    """A message in one line; a heading ending in ':' over a list of lines keeps them apart by ';'."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        text = f"{lines[0]} {'; '.join(lines[1:])}"
    else:
        text = " ".join(lines) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "…"


def _invalid_settings(exc) -> str:
    """pydantic's complaint about a setting, named as the user set it (WHISTLE_NAME)."""
    wrong = [f"WHISTLE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
    return "invalid setting " + "; ".join(wrong)


def refusal(exc: BaseException) -> str | None:
    """The one line that says why a command cannot go on, for what a user can put right: a
    setting, a file (jurisdiction, keys, principals, config), a stack or server that does not
    answer, a port that is taken. None for anything else: a bug keeps its traceback."""
    from pydantic import ValidationError
    from temporalio.service import RPCError

    from whistle.codec import KeyringError
    from whistle.console.dev import DevError
    from whistle.console.secrets import SecretsError
    from whistle.jurisdiction import JurisdictionError
    from whistle.principals import PrincipalsError
    from whistle.process import PortInUse
    from whistle.console.stack import StackError
    from whistle.temporal import TemporalUnreachable

    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return _invalid_settings(exc)
    known = (StackError, JurisdictionError, PrincipalsError, KeyringError, SecretsError, DevError, PortInUse,
             TemporalUnreachable, RPCError, ConnectionError, FileNotFoundError, PermissionError, IsADirectoryError,
             socket.gaierror)
    return _one_line(exc) if isinstance(exc, known) else None


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """Whatever a command cannot do is said in one line, never as a traceback."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except (ValueError, OSError, RuntimeError) as exc:
        fail(refusal(exc) or _one_line(exc))
    except Exception as exc:
        line = refusal(exc)
        if line is None:
            raise
        fail(line)


def client_settings(config: Path | None = None, data_dir: Path | None = None) -> Settings:
    """Settings of a command that talks to a running stack: configuration first, then what
    the data directory's `whistle dev` wrote in its stack file."""
    from whistle.console.stack import with_dev_stack

    with refusals():
        settings = load_settings(config, data_dir=data_dir)
        return with_dev_stack(settings, "data_dir" in settings.model_fields_set)
    raise AssertionError("unreachable")  # refusals() exits


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def local_time(value: str | None, tz: ZoneInfo) -> str | None:
    """An ISO-8601 instant shown in the jurisdiction's time zone, as the API gives it."""
    if not value or not _ISO.match(value):
        return value
    return datetime.fromisoformat(value).astimezone(tz).isoformat(timespec="seconds")


def localised(data: object, tz: ZoneInfo) -> object:
    """Every instant inside a JSON document shown in local time."""
    if isinstance(data, dict):
        return {k: localised(v, tz) for k, v in data.items()}
    if isinstance(data, list):
        return [localised(v, tz) for v in data]
    if isinstance(data, str):
        return local_time(data, tz)
    return data


def jurisdiction_zone(settings: Settings) -> ZoneInfo:
    from whistle.jurisdiction import load_jurisdiction

    with refusals():
        return ZoneInfo(load_jurisdiction(settings.jurisdiction_file).timezone)
    raise AssertionError("unreachable")
