"""Every issue started through the API carries a static summary and details in Chinese with
its ids, readable by `temporal workflow describe` and the Web UI without the codec server."""

from __future__ import annotations

import json
import subprocess
import uuid

from schemas.intake import IssueIntake
from tests.api_support import key, serve_api
from whistle.console.dev import find_binary
from whistle.intake import issue_summary


def test_summary_names_category_grid_to_street_and_channel(demo):
    intake = IssueIntake(channel="hotline", reference="A2", category="tree-trimming", grid_id="heping-a1-c1-g1",
                         description="树枝挡路 13800000000", reporter={"phone": "13800000000"})
    summary, details = issue_summary(intake, demo)
    chain = demo.chain("heping-a1-c1-g1")
    grid, street = demo.unit("heping-a1-c1-g1").name, demo.unit(chain["street"]).name
    assert summary.startswith("树木修剪 · " + grid + " → ") and f"{street} · 12345热线 · hotline-A2" in summary
    assert "\n" not in summary
    assert "`issue-hotline-A2`" in details and "`tree-trimming`" in details and "`heping-a1-c1-g1`" in details
    assert "牵头部门" in details and "`lvhua`" in details
    assert "13800000000" not in summary + details and "树枝挡路" not in details  # nothing the reporter typed


def test_an_unknown_category_or_grid_still_gets_a_summary(demo):
    intake = IssueIntake(channel="qr", reference="Q1", category="no-such", grid_id="no-grid", description="x")
    summary, details = issue_summary(intake, demo)
    assert summary == "no-such · no-grid · 社区二维码 · qr-Q1"


async def test_an_issue_submitted_by_the_api_shows_its_summary(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api:
        ref = f"s-{uuid.uuid4().hex[:8]}"
        r = await api.http.post("/v1/issues", headers=key("hotline-12345"), json={
            "channel": "hotline", "reference": ref, "category": "tree-trimming",
            "grid_id": "heping-a1-c1-g1", "description": "树枝挡路",
        })
        assert r.status_code == 201, r.text
    # Read as ops read it (the Web UI's codec server and a client that is not a worker decode
    # plain payloads; only workers refuse them): the summary is in clear, with no personal data.
    from temporalio.client import Client

    from tests.conftest import TEST_KEYRING
    from whistle.temporal import data_converter

    reader = await Client.connect(dev_env.client.service_client.config.target_host,
                                  data_converter=data_converter(TEST_KEYRING, strict=False))
    handle = reader.get_workflow_handle(f"issue-hotline-{ref}")
    described = await handle.describe()
    assert await described.static_summary() == issue_summary(
        IssueIntake(channel="hotline", reference=ref, category="tree-trimming", grid_id="heping-a1-c1-g1", description="x"),
        demo,
    )[0]
    assert "**类别** 树木修剪 `tree-trimming`" in await described.static_details()
    # The temporal CLI, without a codec endpoint, reads it in clear.
    out = subprocess.run(
        [str(find_binary("temporal")), "workflow", "describe", "--workflow-id", f"issue-hotline-{ref}",
         "--address", dev_env.client.service_client.config.target_host, "--output", "json"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    assert "树木修剪" in json.dumps(json.loads(out), ensure_ascii=False)
