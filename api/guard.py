"""Who is calling: API keys and roles, the client's address, body size and NUL guards. How
much each may call: api/limits.py."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api.deps import AppDeps, Deps
from api.errors import ApiError
from schemas.principal import Principal, Role

API_KEY_HEADER = "X-API-Key"


# Declared in OpenAPI as the API's security scheme; read by `principal`.
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="your API key")


async def authenticate(d: Deps, request: Request, key: str | None) -> Principal:
    principal = d.principals.authenticate(key) if key else None
    if principal is None:
        await d.limits.failed(client_address(d, request))
        raise ApiError(401, f"no API key: send it in the {API_KEY_HEADER} header" if not key else "unknown API key")
    return principal


def client_address(d: Deps, request: Request) -> str:
    """The socket's address; behind a trusted proxy (WHISTLE_TRUSTED_PROXIES), the nearest
    address in X-Forwarded-For that is not itself a trusted proxy. Anyone else's
    X-Forwarded-For is ignored: a client could otherwise pick its own rate-limit bucket."""
    peer = request.client.host if request.client else "unknown"
    trusted = d.trusted_proxies
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer


def trusted_networks(setting: str) -> tuple:
    """WHISTLE_TRUSTED_PROXIES: addresses or CIDR networks, comma separated."""
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in setting.split(",") if n.strip())


def _within(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


async def check_address(d: Deps, request: Request) -> None:
    """The per-address rate limit, which every route counts."""
    await d.limits.check(client_address(d, request), None)


async def identify(d: Deps, request: Request, key: str | None) -> Principal:
    """The principal of an API key, within its rate limits (the address's first, so that a flood
    of bad keys meets 429 too)."""
    await check_address(d, request)
    p = await authenticate(d, request, key)
    await d.limits.check_key(p.id)
    return p


async def principal(request: Request, d: AppDeps, key: Annotated[str | None, Depends(api_key_header)] = None) -> Principal:
    """Dependency: the principal of the X-API-Key header (`identify`)."""
    return await identify(d, request, key)


# OpenAPI for a route open without a key (published data): an explicitly empty security
# requirement, so that a reader of the document sees "public", not "forgot to say".
PUBLIC = {"security": []}


async def limited(request: Request, d: AppDeps) -> None:
    """Dependency for routes open without a key: the per-address limit only."""
    await check_address(d, request)


def require_role(p: Principal, *roles: Role) -> None:
    if p.role not in roles:
        raise ApiError(403, f"role {p.role} may not do this", {"allowed": [r.value for r in roles]})


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` is refused with 413, whether it declares its
    length or comes chunked. The body is read (up to the limit) before the app runs, so the
    app never starts on a body it cannot finish."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(send)
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.max_bytes:
                return await self._refuse(send)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        import json

        payload = json.dumps({"error": "request body too large", "detail": {"max_bytes": self.max_bytes}}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


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


# The caller, authenticated and within its limits: `p: CurrentPrincipal`.
CurrentPrincipal = Annotated[Principal, Depends(principal)]
