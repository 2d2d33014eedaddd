"""What stops a command is said in one line on stderr with exit code 1, never a traceback:
a missing, malformed or invalid jurisdiction file (`whistle worker`, `whistle api`, `whistle
schedules apply`), a bad setting, a taken port (named by its setting), a Temporal or a read
model that does not answer, a backfill of a quarter that has not ended. Each case runs the real command; all of them at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.period import next_quarter, previous_quarter, quarter_of
from whistle.codec import Keyring

WHISTLE = [sys.executable, "-m", "whistle.console.cli"]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_all(cases: dict[str, tuple[list[str], dict[str, str]]], cwd: Path) -> dict[str, subprocess.CompletedProcess]:
    """Every case's command at once, with only the WHISTLE_* and TEMPORAL_* settings it gives."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WHISTLE_", "TEMPORAL_", "PG"))}
    procs = {name: subprocess.Popen([*WHISTLE, *args], env=base | env, cwd=cwd, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name, (args, env) in cases.items()}
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=90)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


def assert_one_line(name: str, result: subprocess.CompletedProcess, *said: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (name, result.returncode, result.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr[-3000:])
    assert "Traceback" not in result.stderr + result.stdout, name
    for text in said:
        assert text in lines[0], (name, text, lines[0])


@pytest.fixture
def configured(tmp_path) -> dict[str, str]:
    """Everything a worker or an API needs but a server that answers: keys, a token secret,
    and Temporal and PostgreSQL addresses where nothing listens."""
    keys = Keyring.new_entry("k1")
    return {"WHISTLE_CODEC_KEYS": keys, "WHISTLE_ACTOR_KEYS": keys, "WHISTLE_TOKEN_SECRET": "t" * 40,
            "WHISTLE_TEMPORAL_ADDRESS": f"127.0.0.1:{closed_port()}",
            "WHISTLE_DATABASE_URL": f"postgresql://whistle:secret-pw@127.0.0.1:{closed_port()}/whistle",
            "WHISTLE_API_PORT": str(closed_port()), "WHISTLE_API_METRICS_ADDRESS": f"127.0.0.1:{closed_port()}",
            "WHISTLE_METRICS_ADDRESS": f"127.0.0.1:{closed_port()}", "WHISTLE_LOG_FORMAT": "json"}


def test_a_bad_jurisdiction_file_stops_worker_api_and_schedules_in_one_line(tmp_path, configured):
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("units: [\n  - id: a\n    name: {\n", encoding="utf-8")
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("units: []\n", encoding="utf-8")
    files = {"missing": (tmp_path / "nonexistent.yaml", "cannot read jurisdiction file"),
             "malformed": (malformed, "not valid YAML"), "invalid": (invalid, "invalid jurisdiction")}
    cases = {
        f"{command} {kind}": (command.split(), configured | {"WHISTLE_JURISDICTION_FILE": str(path)})
        for command in ("worker", "api", "schedules apply") for kind, (path, _) in files.items()
    }
    results = run_all(cases, tmp_path)
    for name, result in results.items():
        path, said = files[name.rsplit(" ", 1)[1]]
        assert_one_line(name, result, str(path), said)


def test_settings_ports_and_servers_that_stop_a_start_are_one_line(tmp_path, configured):
    now = quarter_of(datetime.now(UTC))
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        cases = {
            "bad setting": (["api"], configured | {"WHISTLE_API_PORT": "eighty"}),
            "api port taken": (["api"], configured | {"WHISTLE_API_PORT": str(taken)}),
            "api metrics taken": (["api"], configured | {"WHISTLE_API_METRICS_ADDRESS": f"127.0.0.1:{taken}"}),
            "worker metrics taken": (["worker"], configured | {"WHISTLE_METRICS_ADDRESS": f"127.0.0.1:{taken}"}),
            "api, no Temporal": (["api"], configured),
            "worker, no Temporal": (["worker"], configured),
            "schedules, no Temporal": (["schedules", "apply"], configured),
            "migrate, no read model": (["migrate"], configured),
            "no codec key file": (["api"], configured | {"WHISTLE_CODEC_KEYS": "", "WHISTLE_CODEC_KEY_FILE": str(tmp_path / "none.key")}),
            # Refused before Temporal is reached (it is not here): nothing starts for it.
            "backfill, quarter running": (["schedules", "backfill", "--from", previous_quarter(now), "--to", now], configured),
            "backfill, quarter to come": (["schedules", "backfill", "--from", next_quarter(now), "--to", next_quarter(now)], configured),
        }
        results = run_all(cases, tmp_path)
    temporal = configured["WHISTLE_TEMPORAL_ADDRESS"]
    assert_one_line("bad setting", results["bad setting"], "invalid setting WHISTLE_API_PORT")
    assert_one_line("api port taken", results["api port taken"], f"port {taken} on 127.0.0.1 (WHISTLE_API_PORT) is already in use")
    assert_one_line("api metrics taken", results["api metrics taken"], "(WHISTLE_API_METRICS_ADDRESS) is already in use")
    assert_one_line("worker metrics taken", results["worker metrics taken"], "(WHISTLE_METRICS_ADDRESS) is already in use")
    for name in ("api, no Temporal", "worker, no Temporal", "schedules, no Temporal"):
        assert_one_line(name, results[name], f"cannot reach Temporal at {temporal}")
    # The one-shot migrations say it is the read model they cannot reach, and where (no password).
    assert_one_line("migrate, no read model", results["migrate, no read model"],
                    "cannot reach the read model (PostgreSQL at WHISTLE_DATABASE_URL=postgresql://whistle@127.0.0.1:")
    assert "secret-pw" not in results["migrate, no read model"].stderr
    assert_one_line("no codec key file", results["no codec key file"], "none.key")
    assert_one_line("backfill, quarter running", results["backfill, quarter running"], f"{now} has not ended")
    assert_one_line("backfill, quarter to come", results["backfill, quarter to come"], f"{next_quarter(now)} has not ended")
