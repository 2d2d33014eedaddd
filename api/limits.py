"""How much: rate limits per API key, per client address, and per address for failed keys."""

from __future__ import annotations

import math
import time

import structlog
from limits import parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError

log = structlog.get_logger("whistle.api")


class RateLimits:
    """Per API key, per client address, and per address for failed keys: moving window, in the
    `limits` storage named by WHISTLE_RATE_LIMIT_STORAGE (memory:// by default: per process; a
    shared store such as redis://host:6379 makes every replica count together).

    A shared store that does not answer does not take the API down with it: the request is
    served uncounted, and the outage is logged (once a minute while it lasts)."""

    def __init__(self, per_key: str, per_address: str, failed_keys: str = "60/minute", storage: str = "memory://"):
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage, wrap_exceptions=True))
        self.per_key, self.per_address, self.failed_keys = parse(per_key), parse(per_address), parse(failed_keys)
        self._said_down_at = -math.inf

    def _hit(self, item, kind: str, who: str, what: str) -> None:
        try:
            allowed = self.limiter.hit(item, kind, who)
        except StorageError as exc:
            if time.monotonic() - self._said_down_at >= 60:
                self._said_down_at = time.monotonic()
                log.warning("rate_limit.storage_unavailable", error=" ".join(str(exc).split()), served="uncounted")
            return
        if not allowed:
            reset = self.limiter.get_window_stats(item, kind, who).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise ApiError(429, f"rate limit exceeded for this {what}", str(item), {"Retry-After": str(wait)})

    def check(self, address: str, key_id: str | None) -> None:
        self._hit(self.per_address, "address", address, "client address")
        if key_id:
            self._hit(self.per_key, "key", key_id, "API key")

    def check_key(self, key_id: str) -> None:
        self._hit(self.per_key, "key", key_id, "API key")

    def failed(self, address: str) -> None:
        """A missing or unknown key: counted, so guessing keys runs into 429 soon."""
        self._hit(self.failed_keys, "failed", address, "client address (too many bad API keys)")
