"""The stack file: how every `whistle` command finds the `whistle dev` it belongs to.

`whistle dev` writes DATA_DIR/stack.json while it runs (Temporal's address and namespace, the
API's URL, the payload key file, the task queue) and removes it when it stops. A command given
the same data directory (`--data-dir`, WHISTLE_DATA_DIR, default `.whistle`) takes from it what
was not configured explicitly: a setting from the environment, a TOML file or a flag wins.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from whistle.config import Settings

STACK_FILE = "stack.json"


class StackError(Exception):
    """A command cannot find the stack it should talk to, said in one line."""


class DevStackFile(BaseModel):
    temporal_address: str
    temporal_namespace: str
    task_queue: str
    api_url: str
    ui_url: str
    codec_key_file: Path | None = None
    actor_key_file: Path | None = None  # the CLI attests updates it sends (schedules, `actor sign`)
    demo_keys: Path | None = None
    # For another worker or API joining this stack (`whistle worker|api --data-dir`).
    database_url: str | None = None
    principals_file: Path | None = None
    token_secret_file: Path | None = None
    pid: int


def write_stack_file(data_dir: Path, stack: DevStackFile) -> Path:
    path = data_dir / STACK_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(stack.model_dump_json(indent=2) + "\n")
    tmp.replace(path)  # readers never see half a file
    return path


def remove_stack_file(data_dir: Path) -> None:
    (data_dir / STACK_FILE).unlink(missing_ok=True)


def read_stack_file(data_dir: Path) -> DevStackFile | None:
    path = data_dir / STACK_FILE
    if not path.is_file():
        return None
    try:
        return DevStackFile.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise StackError(f"{path} is not a whistle dev stack file ({exc.error_count()} errors); delete it and restart whistle dev") from None


def with_dev_stack(settings: Settings, data_dir_given: bool) -> Settings:
    """Settings completed from the data directory's stack file. With an explicit data directory
    that holds no running stack, refuse: the user meant that stack."""
    stack = read_stack_file(settings.data_dir)
    if stack is None:
        if data_dir_given:
            raise StackError(
                f"no whistle dev is running with data directory {settings.data_dir} (no {STACK_FILE} there): "
                f"start `whistle dev --data-dir {settings.data_dir}`, or configure the servers (WHISTLE_TEMPORAL_ADDRESS, WHISTLE_API_URL …)"
            )
        return settings
    explicit = settings.model_fields_set
    found = {
        "temporal_address": stack.temporal_address,
        "temporal_namespace": stack.temporal_namespace,
        "task_queue": stack.task_queue,
        "api_url": stack.api_url,
    }
    if stack.database_url is not None:
        found["database_url"] = stack.database_url  # `whistle migrate --data-dir`
    update = {k: v for k, v in found.items() if k not in explicit}
    if not {"codec_keys", "codec_key_file"} & explicit and stack.codec_key_file is not None:
        update["codec_key_file"] = stack.codec_key_file
    if not {"actor_keys", "actor_key_file"} & explicit and stack.actor_key_file is not None:
        update["actor_key_file"] = stack.actor_key_file
    return settings.model_copy(update=update)


def dev_stack_environment(data_dir: Path) -> dict[str, str]:
    """WHISTLE_* variables that make `whistle worker` or `whistle api` join the dev stack
    running in `data_dir` (only with an explicit --data-dir: a production process never
    picks up a dev stack by accident)."""
    stack = read_stack_file(data_dir)
    if stack is None:
        raise StackError(f"no whistle dev is running with data directory {data_dir} (no {STACK_FILE} there): start `whistle dev --data-dir {data_dir}` first")
    values = {
        "WHISTLE_TEMPORAL_ADDRESS": stack.temporal_address,
        "WHISTLE_TEMPORAL_NAMESPACE": stack.temporal_namespace,
        "WHISTLE_TASK_QUEUE": stack.task_queue,
        "WHISTLE_DATABASE_URL": stack.database_url,
        "WHISTLE_CODEC_KEY_FILE": stack.codec_key_file and str(stack.codec_key_file),
        "WHISTLE_ACTOR_KEY_FILE": stack.actor_key_file and str(stack.actor_key_file),
        "WHISTLE_PRINCIPALS_FILE": stack.principals_file and str(stack.principals_file),
        "WHISTLE_TOKEN_SECRET": stack.token_secret_file and stack.token_secret_file.read_text().strip(),
    }
    return {k: v for k, v in values.items() if v}
