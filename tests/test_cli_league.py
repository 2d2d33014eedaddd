"""`whistle league show` prints a published list as tables whose Chinese columns line up."""

from __future__ import annotations

from rich.cells import cell_len

from api.app import build_deps, create_app
from tests.api_support import store
from tests.test_cli_issues import served, whistle
from whistle.config import Settings


async def test_league_show_lines_up(quarter, demo):
    s = Settings(task_queue=quarter["tq"], token_secret="t")
    deps = build_deps(s, quarter["client"], quarter["pool"], demo)
    deps.principals = store(demo)
    async with served(create_app(deps, s)) as base:
        code, out, err = await whistle("league", "show", quarter["period"], "--api-url", base, key=None, url=base)
    assert code == 0, err
    # The fixture's quarter has a few issues a unit: shown, but 样本不足 (not ranked or listed by score).
    assert f"{quarter['period']} 红黑榜 · 区级职能部门" in out and "城管执法局" in out and "样本不足" in out
    # Every line of a table, Chinese or not, is as wide on screen as its top border.
    tables = out.split("红黑榜 · ")[1:]
    assert len(tables) == 2
    for table in tables:
        lines = [line for line in table.splitlines()[1:] if line[:1] in "┏┃┡│└"]
        widths = {cell_len(line.rstrip()) for line in lines}
        assert len(lines) > 4 and len(widths) == 1, "\n".join(lines)
