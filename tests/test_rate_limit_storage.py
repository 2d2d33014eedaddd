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


def redis_server(port: int, data_dir) -> subprocess.Popen:
    """Debian's redis-server on 127.0.0.1:`port`, in memory only, once it takes connections."""
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have redis-server (.ci/run installs it)")
        pytest.skip("redis-server not installed (apt-get install redis-server); CI installs it")
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(data_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return proc


@pytest.fixture
def redis_url(tmp_path):
    port = free_port()
    proc = redis_server(port, tmp_path)
    try:
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


async def test_a_store_that_comes_back_counts_for_every_replica_again(tmp_path, monkeypatch):
    monkeypatch.setattr(limits_module, "RETRY_STORE_AFTER", 0.3)
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0?socket_timeout=1&socket_connect_timeout=0.5"
    first, second = RateLimits("1000/minute", "3/minute", storage=url), RateLimits("1000/minute", "3/minute", storage=url)
    await first.check("203.0.113.7", None)  # Redis is not there: counted by `first` alone
    proc = redis_server(port, tmp_path)
    try:
        await asyncio.sleep(0.4)
        for replica in (first, second, second):  # the store answers again: three, counted together
            await replica.check("203.0.113.7", None)
        with pytest.raises(ApiError):
            await first.check("203.0.113.7", None)
    finally:
        proc.terminate()
        proc.wait(10)


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

        async def timed() -> float:
            began = time.monotonic()
            await limits.check("203.0.113.7", "key-1")
            return time.monotonic() - began

        # After it, one request asks the store again and waits it out; the others meanwhile are
        # counted here, without waiting.
        waits = sorted(await asyncio.gather(*(timed() for _ in range(5))))
        assert waits[-1] >= limits_module.STORE_TIMEOUT * 0.9 and waits[-2] < 0.2, waits
    finally:
        beating.cancel()
        silent.close()
