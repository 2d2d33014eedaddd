"""The README's examples work as printed: the issue its curl example submits lands on a grid
whose worker has a demo key, so the reader can act on it next."""

from __future__ import annotations

import json
import re
from pathlib import Path

from whistle.locate import Locator
from whistle.principals import demo_principals

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_curl_example_lands_on_a_grid_with_a_demo_key(demo):
    body = json.loads(re.search(r"curl -s -X POST \S+/v1/issues .*?-d '(\{.*?\})'", README, re.S).group(1))
    grid = Locator(demo).nearest_grid(body["lat"], body["long"])
    keyed = {unit for _, role, unit, _ in demo_principals(demo) if role.value == "grid"}
    assert grid.id in keyed, f"the README's issue lands on {grid.id}; demo grid keys: {keyed}"
