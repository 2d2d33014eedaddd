"""How much: rate limits per API key, per client address, and per address for failed keys."""

from __future__ import annotations

import asyncio
import math
import time

import structlog
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from api.errors import ApiError

log = structlog.get_logger("whistle.api")

# A shared store's answer is awaited this long at most (seconds), whatever its URI's own
# timeouts say (redis-py waits forever on a server that takes the connection and never answers).
STORE_TIMEOUT = 1.0
# After a shared store fails, this replica counts on its own for this long (seconds) before it
# asks the store again, so that an outage costs one timeout now and then, not one per request.
RETRY_STORE_AFTER = 5.0


def async_storage(uri: str):
    """The asyncio storage of a `limits` URI: `redis://…` is read as `async+redis://…` through
    redis-py's asyncio client (whistle's dependency), so that counting never blocks the event
    loop: a store that hangs would otherwise hold every request the process serves."""
    scheme = uri.split("://", 1)[0]
    uri = uri if scheme.startswith("async+") else f"async+{uri}"
    options = {"implementation": "redispy"} if "redis" in scheme else {}
    return storage_from_string(uri, wrap_exceptions=True, **options)


class RateLimits:
    """Per API key, per client address, and per address for failed keys: moving window, in the
    `limits` storage named by WHISTLE_RATE_LIMIT_STORAGE (memory:// by default: per process; a
    shared store such as redis://host:6379 makes every replica count together).

    A shared store that fails or does not answer within STORE_TIMEOUT does not take the API down
    with it, nor its limits off: this replica counts in its own memory for RETRY_STORE_AFTER
    seconds, then one request asks the store again (the others still counted here until it
    answers); the outage is logged once a minute while it lasts, and its end once."""

    def __init__(self, per_key: str, per_address: str, failed_keys: str = "60/minute", storage: str = "memory://"):
        self.limiter = MovingWindowRateLimiter(async_storage(storage))
        self.local = MovingWindowRateLimiter(MemoryStorage())  # while the shared store is down
        self.per_key, self.per_address, self.failed_keys = parse(per_key), parse(per_address), parse(failed_keys)
        self._said_down_at = -math.inf
        self._down_until = -math.inf  # while the store is left alone; -inf: it answered last
        self._probing = False  # one request asks a store that was down; the rest count here meanwhile

    async def _count(self, limiter: MovingWindowRateLimiter, item, kind: str, who: str) -> float | None:
        """None if allowed, else when the window frees a request (epoch seconds)."""
        if await limiter.hit(item, kind, who):
            return None
        return (await limiter.get_window_stats(item, kind, who)).reset_time

    async def _hit(self, item, kind: str, who: str, what: str) -> None:
        if time.monotonic() < self._down_until or self._probing:
            reset = await self._count(self.local, item, kind, who)
        else:
            probe = self._down_until > -math.inf
            self._probing = probe
            try:
                async with asyncio.timeout(STORE_TIMEOUT):
                    reset = await self._count(self.limiter, item, kind, who)
                if probe:
                    log.info("rate_limit.storage_recovered")
                self._down_until = -math.inf
            except (StorageError, TimeoutError) as exc:
                now = time.monotonic()
                self._down_until = now + RETRY_STORE_AFTER
                if now - self._said_down_at >= 60:
                    self._said_down_at = now
                    log.warning("rate_limit.storage_unavailable", error=" ".join(str(exc).split()) or "no answer in time",
                                counted="by this replica alone")
                reset = await self._count(self.local, item, kind, who)
            finally:
                if probe:
                    self._probing = False
        if reset is not None:
            wait = max(1, math.ceil(reset - time.time()))
            raise ApiError(429, f"rate limit exceeded for this {what}", str(item), {"Retry-After": str(wait)})

    async def check(self, address: str, key_id: str | None) -> None:
        await self._hit(self.per_address, "address", address, "client address")
        if key_id:
            await self._hit(self.per_key, "key", key_id, "API key")

    async def check_key(self, key_id: str) -> None:
        await self._hit(self.per_key, "key", key_id, "API key")

    async def failed(self, address: str) -> None:
        """A missing or unknown key: counted, so guessing keys runs into 429 soon."""
        await self._hit(self.failed_keys, "failed", address, "client address (too many bad API keys)")
