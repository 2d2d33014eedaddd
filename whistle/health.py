"""Health checks shared by the worker's /readyz and the API's /healthz: each answers None when
its component is fine, else what is wrong; run together, with a time limit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

Check = Callable[[], Awaitable[str | None]]


async def run_checks(checks: dict[str, Check], timeout: float = 3.0) -> dict[str, str]:
    """Run the checks at once; returns {name: reason} for those that failed or took too long."""

    async def one(check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except Exception as exc:  # the reason is the point of the check
            return f"{type(exc).__name__}: {exc}"[:300]

    results = await asyncio.gather(*(one(c) for c in checks.values()))
    return {name: reason for name, reason in zip(checks, results) if reason is not None}


def temporal_check(client) -> Check:
    async def check() -> str | None:
        from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

        await client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=timedelta(seconds=3))
        return None

    return check


def postgres_check(pool) -> Check:
    async def check() -> str | None:
        async with pool.acquire(timeout=3) as conn:
            await conn.fetchval("SELECT 1", timeout=3)
        return None

    return check
