"""WHISTLE_RATE_LIMIT_STORAGE as deploy/ sets it for two or more API replicas: a Redis (Debian's
redis-server, run here) makes them count together; a store that fails or does not answer leaves
each replica counting on its own, instead of failing every request or letting them all through."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time

import pytest

from api import limits as limits_module
from api.errors import ApiError
from api.limits import RateLimits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have redis-server (.ci/run installs it)")
        pytest.skip("redis-server not installed (apt-get install redis-server); CI installs it")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0?socket_timeout=1&socket_connect_timeout=1"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_two_replicas_count_together_in_redis(redis_url):
    replicas = [RateLimits("1000/minute", "3/minute", storage=redis_url) for _ in range(2)]
    for n in range(3):
        await replicas[n % 2].check("203.0.113.7", None)  # the same client, through either replica
    for replica in replicas:
        with pytest.raises(ApiError) as refused:
            await replica.check("203.0.113.7", None)
        assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
    await replicas[0].check("203.0.113.8", None)  # another client has its own count


async def test_a_store_that_is_down_leaves_each_replica_counting_on_its_own():
    limits = RateLimits("1000/minute", "3/minute", storage=f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=0.5")
    started = time.monotonic()
    for _ in range(3):  # served: nothing raised for the outage itself
        await limits.check("203.0.113.7", "key-1")
    with pytest.raises(ApiError) as refused:  # but the limit holds, counted here
        await limits.check("203.0.113.7", "key-1")
    assert refused.value.status == 429
    await limits.check("203.0.113.8", "key-1")  # another client has its own count
    assert time.monotonic() - started < 5


async def test_a_store_that_hangs_holds_no_other_request(monkeypatch):
    """A store that takes connections and never answers (a wedged Redis, a black-holed route),
    named as the README's example is, without timeouts (redis-py would wait for ever): the
    call is bounded, the API's other work goes on meanwhile, and the next requests do not wait
    at all until the store is asked again."""
    monkeypatch.setattr(limits_module, "RETRY_STORE_AFTER", 1.5)
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    limits = RateLimits("100/minute", "100/minute", storage=f"redis://127.0.0.1:{port}/0")
    ticks = 0

    async def heartbeat():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    try:
        started = time.monotonic()
        await asyncio.wait_for(limits.check("203.0.113.7", "key-1"), 10)  # bounded: served after STORE_TIMEOUT
        waited = time.monotonic() - started
        assert limits_module.STORE_TIMEOUT * 0.9 <= waited < 5
        assert ticks >= 10  # the loop kept running meanwhile (blocking, it ticks 0)
        started = time.monotonic()
        for _ in range(5):  # within the pause: counted here, the store not even asked
            await limits.check("203.0.113.7", "key-1")
        assert time.monotonic() - started < 0.2
        await asyncio.sleep(1.5 - (time.monotonic() - started))
        started = time.monotonic()
        await limits.check("203.0.113.7", "key-1")  # after it, asked again
        assert time.monotonic() - started >= limits_module.STORE_TIMEOUT * 0.9
    finally:
        beating.cancel()
        silent.close()
