"""A real Prometheus (Debian's `prometheus`) scrapes a running `whistle dev`: the printed metrics
URLs serve temporal_* and whistle_* series, both targets are up, the alert rules load, and a
submitted issue moves whistle_issues_opened_total."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.test_dev_stack import free_port, lines_after_running, read_until, start_dev, started, stop  # noqa: F401  (started: a fixture)

pytestmark = pytest.mark.slow
PROMETHEUS = shutil.which("prometheus")
RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "whistle-rules.yml"
if PROMETHEUS is None:
    pytest.skip("prometheus not installed (apt-get install prometheus); CI installs it", allow_module_level=True)


def get(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError as e:  # not listening (yet)
        return 0, str(e.reason)


def banner(proc: subprocess.Popen, timeout: float = 90) -> str:
    """The block `whistle dev` prints once running, up to its closing blank line."""
    out, up = read_until(proc, lambda seen: lines_after_running(seen) > 0 and seen[-1].strip() == "", timeout)
    if up:
        return "".join(out)
    proc.kill()
    raise AssertionError("whistle dev did not come up:\n" + "".join(out))


def query(prom: str, expr: str) -> list[dict]:
    status, body = get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body
    return json.loads(body)["data"]["result"]


def eventually(check, timeout: float = 30, every: float = 0.5):
    end = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > end:
            return result
        time.sleep(every)


def test_prometheus_scrapes_whistle_dev_and_sees_an_issue_arrive(tmp_path, tmp_path_factory, started):
    prometheus_dir = tmp_path_factory.mktemp("prometheus")
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    worker_metrics, api_metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    os.environ["WHISTLE_METRICS_ADDRESS"], os.environ["WHISTLE_API_METRICS_ADDRESS"] = worker_metrics, api_metrics
    try:
        proc = start_dev(tmp_path, ports)
    finally:
        del os.environ["WHISTLE_METRICS_ADDRESS"], os.environ["WHISTLE_API_METRICS_ADDRESS"]
    started.append(proc)
    printed = banner(proc)
    assert f"http://{worker_metrics}/metrics" in printed and f"http://{api_metrics}/metrics" in printed

    # What a user sees at the printed URLs.
    _, worker_text = get(f"http://{worker_metrics}/metrics")
    assert "temporal_num_pollers{" in worker_text and "whistle_open_issues" in worker_text
    # Health checks give each dependency 3 s, which a loaded machine now and then misses: asked again.
    assert eventually(lambda: get(f"http://{worker_metrics}/readyz")[0] == 200) and get(f"http://{worker_metrics}/livez")[0] == 200
    assert eventually(lambda: get(f"http://127.0.0.1:{ports['api']}/healthz")[0] == 200)
    assert 'whistle_api_requests_total{method="GET",route="/healthz",status="200"}' in get(f"http://{api_metrics}/metrics")[1]

    prom_port = free_port()
    shutil.copy(RULES, prometheus_dir / "whistle-rules.yml")
    (prometheus_dir / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["whistle-rules.yml"],
        "scrape_configs": [
            {"job_name": "whistle-worker", "static_configs": [{"targets": [worker_metrics]}]},
            {"job_name": "whistle-api", "static_configs": [{"targets": [api_metrics]}]},
        ],
    }))
    prom_proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={prometheus_dir / 'prometheus.yml'}", f"--storage.tsdb.path={prometheus_dir / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=open(prometheus_dir / "prometheus.log", "wb"),
    )
    prom = f"http://127.0.0.1:{prom_port}"
    try:
        def targets_up():
            status, body = get(f"{prom}/api/v1/targets")
            if status != 200:
                return None
            active = json.loads(body)["data"]["activeTargets"]
            return {t["labels"]["job"]: t["health"] for t in active} == {"whistle-worker": "up", "whistle-api": "up"}

        assert eventually(targets_up), (prometheus_dir / "prometheus.log").read_text()[-2000:]
        groups = json.loads(get(f"{prom}/api/v1/rules")[1])["data"]["groups"]
        assert {g["name"] for g in groups} == {"whistle", "whistle-recording"}
        assert all(r["health"] in ("ok", "unknown") for g in groups for r in g["rules"])
        assert eventually(lambda: query(prom, 'temporal_num_pollers{job="whistle-worker",poller_type="workflow_task"}'))

        def opened() -> float:
            result = query(prom, 'sum(whistle_issues_opened_total{job="whistle-worker",channel="hotline"}) or vector(0)')
            return float(result[0]["value"][1])

        before = opened()
        keys = yaml.safe_load((tmp_path / "demo-keys.yaml").read_text())
        hotline = next(k["api_key"] for k in keys["keys"] if k["id"] == "hotline-12345")
        status, body = get(
            f"http://127.0.0.1:{ports['api']}/v1/issues",
            data=json.dumps({"channel": "hotline", "reference": f"P-{uuid.uuid4().hex[:8]}", "category": "tree-trimming",
                             "grid_id": "heping-a1-c1-g1", "description": "树枝挡路"}).encode(),
            headers={"X-API-Key": hotline, "content-type": "application/json"},
        )
        assert status == 201, body
        assert eventually(lambda: opened() == before + 1), f"whistle_issues_opened_total stayed at {opened()}"
        assert eventually(lambda: query(prom, 'whistle_open_issues{job="whistle-worker",stage="grid",street="heping"} >= 1'))
        assert eventually(lambda: query(
            prom, 'whistle_api_requests_total{job="whistle-api",method="POST",route="/v1/issues",status="201"} >= 1'))
    finally:
        prom_proc.terminate()
        prom_proc.wait(timeout=30)
    stop(proc)

