"""`whistle issue submit|show|list|act`: the HTTP API from the command line.

The API's address comes from --api-url, WHISTLE_API_URL, or the `whistle dev` running in the
data directory (--data-dir); the key from --api-key or WHISTLE_API_KEY. Times are shown in the
jurisdiction's local time, as the API gives them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer

from whistle.console.common import (
    DataDirOpt,
    client_settings,
    fail,
    jurisdiction_zone,
    local_time,
    localised,
)

app = typer.Typer(no_args_is_help=True, help="Issues over the HTTP API.")

UrlOpt = Annotated[str | None, typer.Option("--api-url", help="default WHISTLE_API_URL, the data directory's whistle dev, or http://127.0.0.1:8000")]
KeyOpt = Annotated[str | None, typer.Option("--api-key", help="default WHISTLE_API_KEY")]


def _call(method: str, path: str, url: str | None, key: str | None, data_dir: Path | None = None,
          explain: dict[int, str | Callable[[dict], str]] | None = None, **kwargs) -> dict:
    """One request to the API; a refusal is printed (with the API's reason) and exits 1.
    `explain` says it instead for a status: a line, or a function of the answer's body."""
    settings = client_settings(None, data_dir)
    base = url or settings.api_url
    headers = kwargs.pop("headers", {})
    if key or settings.api_key:
        headers["X-API-Key"] = key or settings.api_key
    # With an Idempotency-Key the request may be sent again: a time-out, a refused connection or
    # a 503/504 is retried (for about half a minute) with the same key, and the API answers a
    # retry of an applied action with its first answer instead of acting twice.
    retrying = "Idempotency-Key" in headers
    deadline, pause = time.monotonic() + 30, 0.5
    while True:
        try:
            response = httpx.request(method, base.rstrip("/") + path, headers=headers, timeout=30, **kwargs)
            if not (retrying and response.status_code in (502, 503, 504) and time.monotonic() < deadline):
                break
        except httpx.HTTPError as exc:
            if not (retrying and time.monotonic() < deadline):
                fail(f"cannot reach the API at {base} ({exc}): is `whistle dev` running? give --data-dir or --api-url", code=2)
        time.sleep(pause)
        pause = min(pause * 2, 4)
    data = response.json() if response.headers.get("content-type", "").startswith("application/json") else {"body": response.text}
    if response.status_code >= 400:
        if explain and response.status_code in explain:
            said = explain[response.status_code]
            fail(said(data if isinstance(data, dict) else {}) if callable(said) else said)
        reason = data.get("error", response.reason_phrase) if isinstance(data, dict) else response.reason_phrase
        detail = data.get("detail") if isinstance(data, dict) else None
        typer.secho(f"error {response.status_code}: {reason}" + (f": {_in_one_line(detail)}" if detail else ""), fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    return data


def _in_one_line(detail: object) -> str:
    """An API error's detail in one line: each invalid field with its message (a 422), or the
    detail's keys and values."""
    if isinstance(detail, list) and all(isinstance(d, dict) and "message" in d for d in detail):
        return "; ".join(f"{d['field']}: {d['message']}" if d.get("field") else d["message"] for d in detail)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}" for k, v in detail.items())
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
    return " ".join(text.split())


def _print(data: object, data_dir: Path | None) -> None:
    """JSON, with every instant in the jurisdiction's local time."""
    zone = jurisdiction_zone(client_settings(None, data_dir))
    typer.echo(json.dumps(localised(data, zone), ensure_ascii=False, indent=2))


@app.command()
def submit(
    category: Annotated[str, typer.Option(help="category id, see GET /v1/categories")],
    description: Annotated[str, typer.Option()],
    reference: Annotated[str, typer.Option(help="the channel's own id of this report")],
    channel: Annotated[str, typer.Option()] = "hotline",
    grid: Annotated[str | None, typer.Option("--grid", help="grid id")] = None,
    lat: Annotated[float | None, typer.Option()] = None,
    long: Annotated[float | None, typer.Option()] = None,
    address: Annotated[str | None, typer.Option()] = None,
    attribute: Annotated[list[str], typer.Option("--attribute", "-a", help="code=value, repeatable")] = [],  # noqa: B006
    phone: Annotated[str | None, typer.Option(help="reporter's phone (personal data, encrypted)")] = None,
    name: Annotated[str | None, typer.Option(help="reporter's name")] = None,
    urgent: bool = False,
    api_url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Submit an issue; submitting the same (channel, reference) again returns the same issue."""
    attributes = dict(a.split("=", 1) for a in attribute if "=" in a)
    body = {
        "channel": channel, "reference": reference, "category": category, "description": description,
        "grid_id": grid, "lat": lat, "long": long, "address": address, "attributes": attributes, "urgent": urgent,
    }
    if phone or name:
        body["reporter"] = {"phone": phone, "name": name}
    data = _call("POST", "/v1/issues", api_url, api_key, data_dir, json={k: v for k, v in body.items() if v is not None})
    issue = data["issue"]
    typer.echo(f"{'created' if data['created'] else 'exists'}: {data['issue_id']}  stage {issue['stage']}  owner {issue['owner_unit']}")
    if data.get("feedback_token"):  # intake services only; a handler's resident gets it by the notifier
        typer.echo(f"feedback token: {data['feedback_token']}")


@app.command()
def show(issue_id: str, api_url: UrlOpt = None, api_key: KeyOpt = None, data_dir: DataDirOpt = None) -> None:
    """The issue's current state (JSON)."""
    _print(_call("GET", f"/v1/issues/{issue_id}", api_url, api_key, data_dir), data_dir)


@app.command("list")
def list_(
    stage: str | None = None,
    owner: str | None = None,
    overdue: bool | None = typer.Option(None, "--overdue/--not-overdue"),
    limit: int = 50,
    api_url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Issues you may see, newest first."""
    params = {k: v for k, v in {"stage": stage, "owner": owner, "overdue": overdue, "limit": limit}.items() if v is not None}
    data = _call("GET", "/v1/issues", api_url, api_key, data_dir, params=params)
    zone = jurisdiction_zone(client_settings(None, data_dir))
    for row in data["issues"]:
        flag = " OVERDUE" if row["overdue"] else ""
        typer.echo(f"{row['issue_id']:<40} {row['stage']:<12} {row['owner_unit'] or '-':<24} due {local_time(row['due_at'], zone) or '-'}{flag}")
    typer.echo(f"{len(data['issues'])} of {data['total']}")


@app.command()
def act(
    issue_id: str,
    action: str,
    data: Annotated[str | None, typer.Option("--data", "-d", help="the update's JSON input without actor, or @file")] = None,
    token: Annotated[str | None, typer.Option(help="a resident's feedback token, instead of an API key")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="the same key for the same action when you run it again (default: a new one, reused by the command's own retries)")] = None,
    api_url: UrlOpt = None,
    api_key: KeyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run an action (accept, resolve, escalate, dispatch, decline, request_extension,
    decide_extension, assign, urge, feedback, review) and print the new state."""
    try:
        text = Path(data[1:]).read_text() if data and data.startswith("@") else (data or "{}")
        payload = json.loads(text)
    except OSError as exc:
        fail(f"--data {data}: {exc.strerror}")
    except json.JSONDecodeError as exc:
        fail(f"--data is not JSON: {exc}")
    headers = {"X-Feedback-Token": token} if token else {}
    headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex  # one action, however often it is sent
    state = _call("POST", f"/v1/issues/{issue_id}/actions/{action}", api_url, None if token else api_key, data_dir, json=payload, headers=headers)
    zone = jurisdiction_zone(client_settings(None, data_dir))
    typer.echo(f"{issue_id}: {action} done; stage {state['stage']}  owner {state['owner_unit']}  due {local_time(state['due_at'], zone) or '-'}")
    _print(state, data_dir)
