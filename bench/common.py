"""Shared by the benchmarks: the whole stack on a throw-away data directory, results as JSON."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from whistle.config import Settings
from whistle.console.dev import DevStack

RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def stack(**settings) -> AsyncIterator[DevStack]:
    """The stack `whistle dev` runs (SQLite dev server, embedded PostgreSQL, worker, API) on
    free ports and a temporary data directory."""
    with tempfile.TemporaryDirectory(prefix="whistle-bench-") as tmp:
        s = Settings(data_dir=Path(tmp), temporal_port=free_port(), ui_port=free_port(), api_port=free_port(),
                     log_format="json", log_level="WARNING", **settings)
        async with DevStack(s).running() as running:
            yield running


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "commit": commit}


def report(name: str, figures: dict) -> dict:
    out = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), **figures}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return out
