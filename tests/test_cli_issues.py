"""`whistle issue submit|show|list|act` against the API served by uvicorn on a local port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys

import uvicorn

from tests.api_support import serve_api
from whistle.metrics import InLoopServer


async def whistle(*args: str, key: str | None, url: str) -> tuple[int, str, str]:
    env = {**os.environ, "WHISTLE_API_URL": url, "WHISTLE_API_KEY": key or "", "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "whistle.console.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def served(app):
    """`app` served on a port the system chooses (none to race for), for the block."""
    server = InLoopServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    async with server.running():  # a failure to start is raised, not waited on for ever
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


async def test_issue_commands(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api, served(api.app) as url:
        code, out, err = await whistle(
            "issue", "submit", "--category", "tree-trimming", "--description", "树枝", "--reference", "cli-1",
            "--grid", "heping-a1-c1-g1", "--phone", "13800000000", key="key-hotline-12345", url=url,
        )
        assert code == 0, err
        assert "created: hotline-cli-1" in out and "feedback token:" in out
        token = out.split("feedback token:")[1].strip()

        code, out, _ = await whistle("issue", "submit", "--category", "tree-trimming", "--description", "树枝",
                                     "--reference", "cli-1", "--grid", "heping-a1-c1-g1", key="key-hotline-12345", url=url)
        assert code == 0 and "exists: hotline-cli-1" in out

        code, out, _ = await whistle("issue", "act", "hotline-cli-1", "resolve", "-d", '{"summary": "剪了"}',
                                     key="key-grid-heping-a1-c1-g1", url=url)
        assert code == 0 and "resolve done; stage feedback" in out
        state = json.loads(out[out.index("{"):])  # then the new state, as `issue show` prints it
        assert state["stage"] == "feedback" and state["issue_id"] == "hotline-cli-1"
        assert state["due_at"].endswith("+08:00"), state["due_at"]  # local time, as the API says

        code, out, _ = await whistle("issue", "show", "hotline-cli-1", key="key-supervisor", url=url)
        assert code == 0 and '"stage": "feedback"' in out and "13800000000" in out  # a supervisor may call back

        await asyncio.sleep(0.3)
        code, out, _ = await whistle("issue", "list", "--stage", "feedback", key="key-street-heping", url=url)
        assert code == 0 and "hotline-cli-1" in out
        code, out, _ = await whistle("issue", "list", key="key-street-heping", url=url)
        due = [line.split(" due ")[1].split()[0] for line in out.splitlines() if " due " in line and "due -" not in line]
        assert due and all(d.endswith("+08:00") for d in due), out  # the read model's UTC, shown in local time

        code, out, err = await whistle("issue", "act", "hotline-cli-1", "dispatch", key="key-street-heping", url=url)
        assert code == 1 and "error 409" in err and "stage feedback" in err

        code, out, err = await whistle("issue", "show", "hotline-cli-1", key="wrong", url=url)
        assert code == 1 and "error 401" in err

        code, out, _ = await whistle("issue", "act", "hotline-cli-1", "feedback", "-d", '{"satisfied": true}',
                                     "--token", token, key=None, url=url)
        assert code == 0 and "stage closed" in out


async def test_act_sends_an_idempotency_key_so_running_it_again_acts_once(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api, served(api.app) as url:
        code, _, err = await whistle("issue", "submit", "--category", "tree-trimming", "--description", "树枝",
                                     "--reference", "cli-idem", "--grid", "heping-a1-c1-g1", key="key-hotline-12345", url=url)
        assert code == 0, err
        for _ in range(2):  # the operator runs the same command again, not knowing the first landed
            code, out, err = await whistle("issue", "act", "hotline-cli-idem", "urge", "-d", '{"note": "请尽快"}',
                                           "--idempotency-key", "urge-once", key="key-supervisor", url=url)
            assert code == 0, err
            assert json.loads(out[out.index("{"):])["urges"] == 1
        code, out, err = await whistle("issue", "act", "hotline-cli-idem", "urge", "-d", '{"note": "再催"}',
                                       key="key-supervisor", url=url)  # a new command, a new key
        assert code == 0 and json.loads(out[out.index("{"):])["urges"] == 2, err


async def test_a_refusal_is_one_line_with_each_field_and_its_reason(dev_env, demo, pool):
    async with serve_api(dev_env, demo, pool) as api, served(api.app) as url:
        said = await asyncio.gather(
            whistle("issue", "submit", "--category", "nope", "--description", "x", "--reference", "cli-422",
                    "--grid", "heping-a1-c1-g1", key="key-hotline-12345", url=url),
            whistle("issue", "act", "hotline-none", "resolve", "-d", '{"summary": 5}', key="key-grid-heping-a1-c1-g1", url=url),
            whistle("league", "show", "garbage", key=None, url=url),
        )
    for code, _, err in said:
        assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert said[0][2].strip() == "error 422: invalid input: category: unknown category 'nope'"
    assert said[1][2].strip() == "error 422: invalid input: summary: Input should be a valid string"
    assert said[2][2].strip() == "error: PERIOD is a quarter (2026Q3) or a year (2026), not 'garbage'"
