"""A short, bounded Schemathesis run over the API's own /openapi.json: no 5xx, no status or
body the document does not declare. (The review ran it at length; see docs/security.md.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tests.api_support import serve_api
from tests.test_security import http_server

# /healthz answers 503, as documented, when Temporal or PostgreSQL takes over 3 s to answer, which
# a shared dev server on two cores under this run's load sometimes does: there, and only there, a
# 503 is the contract, not a server error.
CONFIG = """
[[operations]]
include-path = "/healthz"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
"""
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(dev_env, demo, pool, tmp_path):
    schemathesis = Path(sys.executable).parent / "schemathesis"
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    async with serve_api(dev_env, demo, pool, rate_limit_address="100000/minute", rate_limit_key="100000/minute") as a:
        async with http_server(a.app) as url:
            run = await asyncio.to_thread(
                subprocess.run,
                [str(schemathesis), "--config-file", "schemathesis.toml", "run", f"{url}/openapi.json", "-H", "X-API-Key: key-supervisor",
                 "--checks", CHECKS, "--max-examples", "8", "--phases", "examples,coverage,fuzzing",
                 "--seed", "12", "--generation-deterministic", "--no-color"],
                capture_output=True, text=True, timeout=120, cwd=tmp_path,  # its cache stays out of the tree
            )
    assert run.returncode == 0, run.stdout[-4000:]
