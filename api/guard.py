"""Who is calling, and how much: API keys, rate limits, body size."""

from __future__ import annotations

from fastapi import Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.errors import ApiError
from schemas.principal import Principal, Role
from whistle.principals import PrincipalStore

API_KEY_HEADER = "X-API-Key"


class RateLimits:
    """Per API key and per client address, moving window, in process memory (one API
    process; behind several, put the limit in the ingress as well)."""

    def __init__(self, per_key: str, per_address: str):
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_key, self.per_address = parse(per_key), parse(per_address)

    def check(self, address: str, key_id: str | None) -> None:
        if not self.limiter.hit(self.per_address, "address", address):
            raise ApiError(429, "rate limit exceeded for this client address", str(self.per_address), {"Retry-After": "60"})
        if key_id and not self.limiter.hit(self.per_key, "key", key_id):
            raise ApiError(429, "rate limit exceeded for this API key", str(self.per_key), {"Retry-After": "60"})


def authenticate(request: Request, key: str | None) -> Principal:
    store: PrincipalStore = request.app.state.deps.principals
    if not key:
        raise ApiError(401, f"no API key: send it in the {API_KEY_HEADER} header")
    principal = store.authenticate(key)
    if principal is None:
        raise ApiError(401, "unknown API key")
    return principal


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def principal(request: Request) -> Principal:
    """Dependency: the principal of the X-API-Key header, within its rate limit."""
    p = authenticate(request, request.headers.get(API_KEY_HEADER))
    request.app.state.deps.limits.check(client_address(request), p.id)
    return p


async def limited(request: Request) -> None:
    """Dependency for routes open without a key: the per-address limit only."""
    request.app.state.deps.limits.check(client_address(request), None)


def require_role(p: Principal, *roles: Role) -> None:
    if p.role not in roles:
        raise ApiError(403, f"role {p.role} may not do this", {"allowed": [r.value for r in roles]})


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` is refused with 413 before it is read whole."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        import json

        payload = json.dumps({"error": "request body too large", "detail": {"max_bytes": self.max_bytes}}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


class _TooLarge(Exception):
    pass


class NoNul:
    """ASGI middleware: NUL in a path or query string is refused (PostgreSQL cannot store it)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (b"%00" in scope.get("query_string", b"").lower() or "\x00" in scope.get("path", "")):
            import json

            payload = json.dumps({"error": "NUL characters are not allowed in the path or query"}).encode()
            await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": payload})
            return
        await self.app(scope, receive, send)
