"""The HTTP gateway: FastAPI app over the Temporal client and the read model."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from api import codec_server, errors, issues, league, open311
from api.deps import Deps
from api.guard import BodyLimit, NoNul, RateLimits
from whistle.config import Settings

DESCRIPTION = """Intake and actions of the whistle-and-report (吹哨报到) issue workflows.
Authenticate with `X-API-Key`. Errors: 400/422 invalid input, 401 no or bad key, 403 not allowed
for this principal, 404 unknown, 409 not allowed in the current state, 413 too large, 429 rate
limited — each with a JSON body `{"error": ..., "detail": ...}`."""


def create_app(deps: Deps, settings: Settings, lifespan=None, codec=None) -> FastAPI:
    # FastAPI with /docs (Swagger UI) and /redoc served from the fastapi-offline wheel's files,
    # not a CDN that a district's intranet cannot reach.
    app = FastAPIOffline(title="whistle", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.deps = deps
    errors.install(app)
    open311.install(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        async with app.state.deps.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"status": "ok"}

    app.include_router(issues.router)
    app.include_router(league.router)
    app.include_router(open311.router)
    if settings.codec_server and codec is not None:
        app.state.codec = codec
        app.state.codec_auth = settings.codec_server_auth
        app.include_router(codec_server.router)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[f"http://{settings.host}:{settings.ui_port}", f"http://localhost:{settings.ui_port}"],
            allow_methods=["POST"],
            allow_headers=["content-type", "x-namespace", "authorization"],
            allow_credentials=True,
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(NoNul)
    return app


def build_deps(settings: Settings, client, pool, jurisdiction) -> Deps:
    from whistle.principals import load_principals

    return Deps(
        client=client,
        pool=pool,
        jurisdiction=jurisdiction,
        principals=load_principals(settings.principals_file),
        limits=RateLimits(settings.rate_limit_key, settings.rate_limit_address),
        token_secret=settings.token_secret or secrets.token_urlsafe(32),
        task_queue=settings.task_queue,
    )


def app_from_settings(settings: Settings) -> FastAPI:
    """`whistle api`: the app owns its Temporal client and its pool for its lifetime."""
    from whistle.codec import EncryptionCodec
    from whistle.db.pool import open_pool
    from whistle.jurisdiction import load_jurisdiction
    from whistle.temporal import connect

    if not settings.database_url:
        raise SystemExit("WHISTLE_DATABASE_URL is not set: the API reads the read model")
    if not settings.token_secret:
        raise SystemExit("WHISTLE_TOKEN_SECRET is not set: feedback tokens must survive restarts")
    jurisdiction = load_jurisdiction(settings.jurisdiction_file)
    keyring = settings.keyring()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = await connect(settings.temporal_address, settings.temporal_namespace, keyring)
        async with open_pool(settings.database_url) as pool:
            app.state.deps = build_deps(settings, client, pool, jurisdiction)
            yield

    return create_app(None, settings, lifespan=lifespan, codec=EncryptionCodec(keyring))  # type: ignore[arg-type]
