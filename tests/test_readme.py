"""The README's examples work as printed: the issue its curl example submits lands on a grid
whose worker has a demo key, so the reader can act on it next."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_dev_stack import started  # noqa: F401  (fixture: stops every whistle dev it started)
from whistle.locate import Locator
from whistle.principals import demo_principals

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_curl_example_lands_on_a_grid_with_a_demo_key(demo):
    body = json.loads(re.search(r"curl -s -X POST \S+/v1/issues .*?-d '(\{.*?\})'", README, re.S).group(1))
    grid = Locator(demo).nearest_grid(body["lat"], body["long"])
    keyed = {unit for _, role, unit, _ in demo_principals(demo) if role.value == "grid"}
    assert grid.id in keyed, f"the README's issue lands on {grid.id}; demo grid keys: {keyed}"


def test_the_http_api_block_runs_as_printed_against_whistle_dev(tmp_path, started):  # noqa: F811
    """The block under "The HTTP API", run by bash from a directory holding `.whistle` and
    `.venv` as a fresh clone's would, against `whistle dev` (only the API's port is changed)."""
    import os
    import subprocess
    import sys

    from tests.test_dev_stack import free_port, start_dev, wait_running

    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    proc = start_dev(tmp_path / ".whistle", ports)
    started.append(proc)
    wait_running(proc)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "whistle").symlink_to(Path(sys.executable).parent / "whistle")
    section = README[README.index("### The HTTP API"):]
    block = section[section.index("```sh\n") + 6:section.index("```", section.index("```sh\n") + 6)]
    script = block.replace("127.0.0.1:8000", f"127.0.0.1:{ports['api']}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISTLE_", "TEMPORAL_"))}
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert '"issue_id":"hotline-A2"' in out.replace(" ", "")  # the intake
    assert "hotline-A2" in out  # listed
    assert '"stage":"street"' in out.replace(" ", "")  # the grid's escalation, by curl
    assert "dispatch done; stage department" in out  # the street's dispatch, by the CLI
