"""Commands find a `whistle dev` by its data directory alone (`--data-dir` or WHISTLE_DATA_DIR):
`whistle migrate` its read model, `whistle actor sign` its actor key, and a second `whistle
worker` or `whistle api` joins it beside the stack's own (whose metrics ports are taken), on a
free metrics port it prints. The data directory here holds the stack file `whistle dev` writes,
pointing at the session's Temporal dev server and a new read model."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.actions import Escalate
from tests.conftest import TEST_ACTOR_ENTRY, TEST_ACTOR_KEYS, TEST_KEY_ENTRY, new_database
from tests.test_dev_stack import read_until
from whistle.attest import HEADER
from whistle.console.stack import DevStackFile, write_stack_file

WHISTLE = [sys.executable, "-m", "whistle.console.cli"]


@pytest.fixture
async def stack_dir(tmp_path, dev_env, pg_server) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name, text in (("codec.key", TEST_KEY_ENTRY), ("actor.key", TEST_ACTOR_ENTRY), ("token.secret", "s" * 40)):
        (data / name).write_text(text + "\n")
    write_stack_file(data, DevStackFile(
        temporal_address=dev_env.client.service_client.config.target_host, temporal_namespace="default",
        task_queue=f"tq-{uuid.uuid4().hex[:8]}", api_url="http://127.0.0.1:9", ui_url="http://127.0.0.1:9",
        codec_key_file=data / "codec.key", actor_key_file=data / "actor.key", database_url=await new_database(pg_server),
        token_secret_file=data / "token.secret", pid=os.getpid(),
    ))
    return data


def clean_env(**extra: str) -> dict[str, str]:
    """No WHISTLE_* or TEMPORAL_* settings from outside: only the data directory says which stack."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("WHISTLE_", "TEMPORAL_", "PG"))} | extra


def whistle(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*WHISTLE, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=clean_env(**env))


def test_migrate_and_actor_sign_take_the_stack_from_the_data_directory(stack_dir, tmp_path):
    applied = whistle("migrate", "--data-dir", str(stack_dir), cwd=tmp_path)
    assert applied.returncode == 0 and "applied migrations" in applied.stdout, applied.stderr
    again = whistle("migrate", cwd=tmp_path, WHISTLE_DATA_DIR=str(stack_dir))
    assert again.returncode == 0 and "up to date" in again.stdout, again.stderr

    update = '{"actor":{"id":"g1","role":"grid","unit_id":"heping-a1-c1-g1"},"reason":"扰民"}'
    sign = ("actor", "sign", "-w", "issue-hotline-X1", "--name", "escalate", "--update-id", "u-1", "--input", update)

    def attests(out: str) -> bool:  # signed with the stack's actor key, for this update id and body
        name, _, value = out.strip().partition("=")
        received = Escalate.model_validate_json(update)  # as the worker's validator sees it
        return name == HEADER and TEST_ACTOR_KEYS.verify("issue-hotline-X1", "escalate", "u-1", [received], json.loads(value))

    signed = whistle(*sign, "--data-dir", str(stack_dir), cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    assert attests(signed.stdout)
    assert attests(whistle(*sign, cwd=tmp_path, WHISTLE_DATA_DIR=str(stack_dir)).stdout)
    # Without a stack or a key: one line that says where a key comes from.
    none = whistle(*sign, cwd=tmp_path)
    assert none.returncode == 1 and len(none.stderr.strip().splitlines()) == 1
    assert "no actor key" in none.stderr and "--data-dir" in none.stderr


async def test_schedules_apply_says_of_every_schedule_what_it_did(stack_dir, tmp_path, dev_env):
    from whistle.schedules import BRIEFING_SCHEDULE_ID, SCHEDULE_ID

    said = []
    for _ in range(2):
        applied = whistle("schedules", "apply", "--data-dir", str(stack_dir), cwd=tmp_path)
        assert applied.returncode == 0, applied.stderr
        said.append({line.split(": ")[0].removeprefix("schedule "): line.split(": ")[1].split(" (")[0]
                     for line in applied.stdout.splitlines()})
    try:
        # The stack's task queue is new to the server: both are created or changed, then left alone.
        assert set(said[0]) == {SCHEDULE_ID, BRIEFING_SCHEDULE_ID} and set(said[0].values()) <= {"created", "updated"}, said
        assert said[1] == {SCHEDULE_ID: "unchanged", BRIEFING_SCHEDULE_ID: "unchanged"}, said
    finally:
        for schedule_id in (SCHEDULE_ID, BRIEFING_SCHEDULE_ID):
            await dev_env.client.get_schedule_handle(schedule_id).delete()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def default_metrics_ports_taken() -> Iterator[None]:
    """9464 and 9465 held, as the stack's own worker and API hold them (already taken is as good)."""
    held = []
    for port in (9464, 9465):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
            held.append(s)
        except OSError:
            s.close()
    yield
    for s in held:
        s.close()


def announced(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The line a joining process prints when it is up."""
    out, up = read_until(proc, lambda seen: seen[-1].startswith("beside the whistle dev in"), timeout)
    if up:
        return out[-1]
    if proc.poll() is not None:
        raise AssertionError(f"exited {proc.returncode}: {proc.stderr.read()[-3000:]}")
    proc.kill()
    raise AssertionError("no line said where it is: " + "".join(out)[-3000:])


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


def test_a_second_worker_and_api_join_beside_the_stack(stack_dir, tmp_path, default_metrics_ports_taken):
    api_port = free_port()
    procs = [subprocess.Popen([*WHISTLE, cmd, "--data-dir", str(stack_dir)], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=clean_env(WHISTLE_API_PORT=str(api_port), WHISTLE_LOG_FORMAT="json"))
             for cmd in ("worker", "api")]
    try:
        worker_line, api_line = (announced(p) for p in procs)
        assert str(stack_dir) in worker_line and f"API http://127.0.0.1:{api_port}" in api_line, (worker_line, api_line)
        for line, series in ((worker_line, "whistle_"), (api_line, "whistle_api_")):
            url = re.search(r"metrics (http://\S+/metrics)", line).group(1)
            assert url.startswith("http://127.0.0.1:") and ":0/" not in url and ":9464/" not in url and ":9465/" not in url, line
            status, text = get(url)
            assert status == 200 and series in text
        assert get(f"http://127.0.0.1:{api_port}/livez")[0] == 200
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(30) for p in procs]
    assert codes == [0, 0], [p.stderr.read()[-2000:] for p in procs]


def test_a_second_api_on_a_taken_port_names_the_setting(stack_dir, tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        refused = whistle("api", "--data-dir", str(stack_dir), cwd=tmp_path, WHISTLE_API_PORT=str(port))
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert f"port {port} on 127.0.0.1 (WHISTLE_API_PORT) is already in use" in refused.stderr
