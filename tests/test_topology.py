"""The production topology, run here: a Temporal dev server and PostgreSQL, the one-shot jobs
(`whistle migrate`, `whistle search-attributes`, `whistle schedules apply`), then two
`whistle worker` and two `whistle api` processes configured only by the variables deploy/ sets
(deploy/whistle.env and the secrets `whistle secrets init` makes; addresses pointed at this
machine). Lifecycles are spread over both APIs; they all close and the read model agrees with
the workflows."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml

from tests.conftest import new_database
from whistle.config import DEMO_JURISDICTION
from whistle.console.dev import find_binary
from whistle.temporal import search_attribute_flags

pytestmark = pytest.mark.slow
DEPLOY = Path(__file__).parents[1] / "deploy"
WHISTLE = [sys.executable, "-m", "whistle.console.cli"]
GRID = "heping-a1-c1-g1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
async def temporal(tmp_path):
    """A Temporal dev server of its own (in memory), as an operator would start one."""
    port = free_port()
    log = (tmp_path / "temporal.log").open("wb")
    proc = subprocess.Popen(
        [str(find_binary("temporal")), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
         "--log-level", "warn", *search_attribute_flags()],
        stdout=log, stderr=log, start_new_session=True,
    )
    try:
        from temporalio.client import Client

        for _ in range(120):
            try:
                await Client.connect(f"127.0.0.1:{port}")
                break
            except RuntimeError:
                await asyncio.sleep(0.25)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def deployment_env(tmp_path: Path, temporal: str, db_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """The process environment: deploy/whistle.env and the generated secrets, with only the
    addresses changed for this machine. Returns (env, the variables given)."""
    secrets = tmp_path / "secrets"
    made = subprocess.run([*WHISTLE, "secrets", "init", str(secrets)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    given = env_file(DEPLOY / "whistle.env") | env_file(secrets / "whistle.env")
    here = {
        "TEMPORAL_ADDRESS": temporal, "WHISTLE_TEMPORAL_ADDRESS": temporal,
        "TEMPORAL_NAMESPACE": "default", "WHISTLE_TEMPORAL_NAMESPACE": "default",
        # embedded PostgreSQL on a Unix socket: no TLS to verify here
        "WHISTLE_DATABASE_URL": db_url + ("&" if "?" in db_url else "?") + "sslmode=disable",
        "WHISTLE_JURISDICTION_FILE": str(DEMO_JURISDICTION),
        "WHISTLE_PRINCIPALS_FILE": str(secrets / "principals.yaml"),
        "WHISTLE_NOTIFIER": "log",
        "WHISTLE_HOST": "127.0.0.1",
    }
    assert set(here) <= set(given), "the test may only change variables deploy/ sets"
    given |= here
    # Nothing else: no WHISTLE_* or TEMPORAL_* from the outside, no data directory to find.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WHISTLE_", "TEMPORAL_", "PG"))}
    return base | given, given


def keys(tmp_path: Path) -> dict[str, str]:
    return {k["id"]: k["api_key"] for k in yaml.safe_load((tmp_path / "secrets" / "api-keys.yaml").read_text())["keys"]}


def one_shot(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run([*WHISTLE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, f"whistle {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


async def wait_healthy(url: str, proc: subprocess.Popen, path: str = "/healthz") -> None:
    """Until the process answers 200 on `path`: an API's /healthz, or a worker's /readyz (polling
    its task queue; the API's health does not say a worker is there to register an intake)."""
    async with httpx.AsyncClient() as http:
        for _ in range(240):
            assert proc.poll() is None, f"{url} exited"
            try:
                if (await http.get(f"{url}{path}", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError(f"{url}{path} did not answer 200")


async def lifecycle(apis: list[httpx.AsyncClient], key: dict[str, str], n: int, full: bool) -> str:
    """One issue, each step through the next API in turn; returns its id."""
    turn = iter(range(n, n + 100))

    def api() -> httpx.AsyncClient:
        return apis[next(turn) % len(apis)]

    async def act(issue_id: str, action: str, who: str | None, body: dict, token: str | None = None) -> dict:
        headers = {"X-Feedback-Token": token} if token else {"X-API-Key": key[who]}
        r = await api().post(f"/v1/issues/{issue_id}/actions/{action}", json=body, headers=headers)
        assert r.status_code == 200, (action, r.text)
        return r.json()

    body = {"channel": "hotline", "reference": f"topo-{n}", "grid_id": GRID, "description": "拓扑测试",
            "reporter": {"phone": "13800000000"}}
    if full:
        body |= {"category": "illegal-construction", "attributes": {"construction_status": "正在施工"}}
    else:
        body |= {"category": "tree-trimming"}
    r = await api().post("/v1/issues", headers={"X-API-Key": key["intake-hotline"]}, json=body)
    assert r.status_code == 201, r.text
    issue_id, token = r.json()["issue_id"], r.json()["feedback_token"]
    if full:
        state = await act(issue_id, "escalate", f"grid-{GRID}", {"reason": "需执法"})
        assert state["stage"] == "street", state  # the community and area pass it on by the duty lists
        await act(issue_id, "dispatch", "street-heping", {})
        for dept in ("chengguan", "zhujian"):
            await act(issue_id, "accept", f"dept-{dept}", {})
        for dept in ("chengguan", "zhujian"):
            state = await act(issue_id, "resolve", f"dept-{dept}", {"summary": "已处理"})
    else:
        state = await act(issue_id, "resolve", f"grid-{GRID}", {"summary": "已修剪"})
    assert state["stage"] == "feedback", state
    state = await act(issue_id, "feedback", None, {"satisfied": True}, token=token)
    assert state["stage"] == "closed", state
    return issue_id


def stop_all(procs: list[subprocess.Popen]) -> list[int]:
    """SIGTERM, as Kubernetes stops a pod; whatever has not stopped in 30 s is killed (and its
    exit code is then not 0), so a failure inside the test is never hidden by a hung process."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(30))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    return codes


async def test_two_workers_two_apis_configured_as_deployed(tmp_path, temporal, pg_server):
    db_url = await new_database(pg_server)
    env, given = deployment_env(tmp_path, temporal, db_url)
    # The one-shot jobs of compose.yaml and k8s/jobs.yaml, in their order.
    assert "applied migrations" in one_shot(env, tmp_path, "migrate")
    assert "up to date" in one_shot(env, tmp_path, "migrate")
    one_shot(env, tmp_path, "search-attributes")
    assert "created" in one_shot(env, tmp_path, "schedules", "apply")
    assert "unchanged" in one_shot(env, tmp_path, "schedules", "apply")

    procs: list[subprocess.Popen] = []
    urls, workers = [], []
    try:
        for i in range(2):
            workers.append(f"127.0.0.1:{free_port()}")
            worker_env = env | {"WHISTLE_METRICS_ADDRESS": workers[-1]}
            procs.append(subprocess.Popen([*WHISTLE, "worker"], env=worker_env, cwd=tmp_path,
                                          stdout=subprocess.DEVNULL, stderr=(tmp_path / f"worker{i}.log").open("wb")))
        for i in range(2):
            port = free_port()
            api_env = env | {"WHISTLE_API_PORT": str(port), "WHISTLE_API_METRICS_ADDRESS": f"127.0.0.1:{free_port()}"}
            procs.append(subprocess.Popen([*WHISTLE, "api"], env=api_env, cwd=tmp_path,
                                          stdout=subprocess.DEVNULL, stderr=(tmp_path / f"api{i}.log").open("wb")))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs[2:], strict=True):
            await wait_healthy(url, proc)
        for address, proc in zip(workers, procs[:2], strict=True):
            await wait_healthy(f"http://{address}", proc, "/readyz")

        key = keys(tmp_path)
        apis = [httpx.AsyncClient(base_url=u, timeout=30) for u in urls]
        try:
            ids = await asyncio.gather(*(lifecycle(apis, key, n, full=n % 3 == 0) for n in range(6)))
            # The read model, through the other API and directly: every issue closed, as its workflow says.
            conn = await asyncpg.connect(db_url)
            try:
                for _ in range(100):
                    rows = {r["issue_id"]: r for r in await conn.fetch("SELECT issue_id, stage, outcome FROM issues")}
                    if len(rows) == 6 and all(r["stage"] == "closed" for r in rows.values()):
                        break
                    await asyncio.sleep(0.1)
            finally:
                await conn.close()
            assert set(rows) == set(ids) and all(r["stage"] == "closed" for r in rows.values()), rows
            for n, issue_id in enumerate(ids):
                live = (await apis[(n + 1) % 2].get(f"/v1/issues/{issue_id}", headers={"X-API-Key": key["supervisor"]})).json()
                assert live["stage"] == rows[issue_id]["stage"] == "closed"
                assert live.get("outcome") == rows[issue_id]["outcome"], (live.get("outcome"), rows[issue_id]["outcome"])
            listed = (await apis[1].get("/v1/issues", params={"stage": "closed"}, headers={"X-API-Key": key["supervisor"]})).json()
            assert listed["total"] == 6
        finally:
            for a in apis:
                await a.aclose()
        assert all(p.poll() is None for p in procs), "a worker or an API died"
    finally:
        codes = stop_all(procs)
    logs = {f: (tmp_path / f"{f}.log").read_text() for f in ("worker0", "worker1", "api0", "api1")}
    # Workers drain and exit 0; an API finishes its requests in flight, closes, and exits 0.
    assert codes == [0, 0, 0, 0], (codes, logs)
    assert all("worker.stopped" in logs[w] for w in ("worker0", "worker1"))
    assert all("api.stopped" in logs[a] for a in ("api0", "api1"))
    assert given["WHISTLE_DATABASE_URL"].startswith(db_url)
