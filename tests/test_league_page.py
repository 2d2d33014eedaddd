"""The published red/black list page, loaded in headless Chromium (Debian's `chromium`; .ci/run
installs it): the ranking table and the bar charts are there, with Chinese labels."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from api.app import build_deps, create_app
from tests.api_support import store
from tests.test_cli_issues import served
from whistle.config import Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("headless Chromium not installed (apt-get install chromium); CI installs it", allow_module_level=True)


async def chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_page_in_a_real_browser(quarter, demo, tmp_path):
    assert CHROMIUM, "CI must have headless Chromium"
    s = Settings(task_queue=quarter["tq"], token_secret="t")
    deps = build_deps(s, quarter["client"], quarter["pool"], demo)
    deps.principals = store(demo)
    async with served(create_app(deps, s)) as base:
        url = f"{base}/league/{quarter['period']}"
        dom = await chromium("--dump-dom", url)
        shot = tmp_path / "league.png"
        await chromium(f"--screenshot={shot}", "--window-size=1400,1800", url)
    assert f"{quarter['period']} 红黑榜" in dom
    assert dom.count('<table class="league">') == 2  # departments and streets
    assert "按时受理率" in dom and "黑榜" in dom and "城管执法局" in dom
    assert dom.count('<svg class="chart"') == 12 and dom.count('class="bar"') >= 12
    # Intervals: error bars on the charts, numerator/denominator and interval beside each rate.
    assert dom.count('class="error-bar"') >= 12 and "(1/1)" in dom and 'class="ci"' in dom
    assert "样本不足" in dom  # one issue each: not ranked
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    Path(os.environ.get("WHISTLE_SCREENSHOT_DIR", tmp_path)).joinpath("league.png").write_bytes(shot.read_bytes())
