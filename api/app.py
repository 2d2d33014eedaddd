"""The HTTP gateway: FastAPI app over the Temporal client and the read model."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import structlog
import uvicorn

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from api import briefing, codec_server, errors, issues, league, open311
from api.deps import Deps
from api.guard import BodyLimit, NoNul
from api.limits import RateLimits
from whistle import health, metrics, tracing
from whistle.config import Settings

log = structlog.get_logger("whistle.api")

DESCRIPTION = """Intake and actions of the whistle-and-report (吹哨报到) issue workflows.
Authenticate with `X-API-Key`. Errors: 400/422 invalid input, 401 no or bad key, 403 not allowed
for this principal, 404 unknown, 409 not allowed in the current state, 413 too large, 429 rate
limited — each with a JSON body `{"error": ..., "detail": ...}`."""


class Health(BaseModel):
    status: str
    down: dict[str, str] = {}  # component -> reason


def create_app(deps: Deps, settings: Settings, codec=None, tracer_provider=None) -> FastAPI:
    # FastAPI with /docs (Swagger UI) and /redoc served from the fastapi-offline wheel's files,
    # not a CDN that a district's intranet cannot reach.
    app = FastAPIOffline(title="whistle", version="0.1.0", description=DESCRIPTION)
    tracing.instrument_api(app, tracer_provider)
    app.state.deps = deps
    errors.install(app)
    open311.install(app)

    @app.get("/healthz", tags=["ops"], response_model=Health,
             responses={503: {"model": Health, "description": "what is down, and why"}})
    async def healthz() -> JSONResponse:
        """Temporal and PostgreSQL both answer (503 naming what does not)."""
        deps = app.state.deps
        down = await health.run_checks(
            {"temporal": health.temporal_check(deps.client), "postgres": health.postgres_check(deps.pool)}
        )
        if down:
            return JSONResponse(Health(status="down", down=down).model_dump(), status_code=503)
        return JSONResponse(Health(status="ok").model_dump(exclude_defaults=True))

    @app.get("/livez", tags=["ops"], response_model=Health, response_model_exclude_defaults=True)
    async def livez() -> Health:
        """The process answers (nothing else is checked)."""
        return Health(status="alive")

    app.include_router(issues.router)
    app.include_router(league.router)
    app.include_router(briefing.router)
    app.include_router(open311.router)
    if settings.codec_server and codec is not None:
        app.state.codec = codec
        app.state.codec_auth = settings.codec_server_auth
        app.include_router(codec_server.router)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=(
                [o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()] if settings.codec_cors_origins
                else [f"http://{settings.host}:{settings.ui_port}", f"http://localhost:{settings.ui_port}"]
            ),
            allow_methods=["POST"],
            allow_headers=["content-type", "x-namespace", "authorization"],
            allow_credentials=True,
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(NoNul)
    app.add_middleware(metrics.RequestMetrics)  # outermost: counts what the others refuse too
    return app


def build_deps(settings: Settings, client, pool, jurisdiction) -> Deps:
    from activities.notifier import notifier_from
    from api.guard import trusted_networks
    from whistle.principals import load_principals

    return Deps(
        client=client,
        pool=pool,
        jurisdiction=jurisdiction,
        principals=load_principals(settings.principals_file),
        limits=RateLimits(settings.rate_limit_key, settings.rate_limit_address, settings.rate_limit_failed_keys,
                          settings.rate_limit_storage),
        token_secret=settings.token_secret or secrets.token_urlsafe(32),
        task_queue=settings.task_queue,
        notifier=notifier_from(settings.notifier),
        trusted_proxies=trusted_networks(settings.trusted_proxies),
        register_timeout=settings.register_timeout,
    )


def api_server(settings: Settings, client, pool, jurisdiction, keyring, access_log: bool = True) -> metrics.InLoopServer:
    """The API, served in this event loop (`whistle api` and `whistle dev`). proxy_headers=False:
    uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 before the app's own
    WHISTLE_TRUSTED_PROXIES rule sees the request (api.guard.client_address)."""
    from whistle.codec import EncryptionCodec

    app = create_app(build_deps(settings, client, pool, jurisdiction), settings, codec=EncryptionCodec(keyring))
    return metrics.InLoopServer(uvicorn.Config(app, host=settings.host, port=settings.api_port, log_config=None,
                                               access_log=access_log, lifespan="off", proxy_headers=False))


async def serve(settings: Settings, stop: asyncio.Event, announce: Callable[[str], None] | None = None) -> None:
    """`whistle api` until `stop` is set. What can refuse a start is checked first, before
    anything listens (settings, files, keys, both ports), then Temporal and the read model are
    reached; the app serves on their client and pool, which it owns for its lifetime. `announce`
    is told where the API and its metrics are."""
    from whistle.db.pool import open_pool
    from whistle.jurisdiction import load_jurisdiction
    from whistle.process import ensure_free
    from whistle.temporal import connect_settings

    if not settings.database_url:
        raise SystemExit("WHISTLE_DATABASE_URL is not set: the API reads the read model")
    if not settings.token_secret:
        raise SystemExit("WHISTLE_TOKEN_SECRET is not set: feedback tokens must survive restarts")
    jurisdiction = load_jurisdiction(settings.jurisdiction_file)
    keyring = settings.keyring()
    settings.actor_key_ring()  # fail at start, not at the first action
    ensure_free(settings.host, settings.api_port, "WHISTLE_API_PORT")
    ensure_free(*metrics.split_address(settings.api_metrics_address), "WHISTLE_API_METRICS_ADDRESS")
    sdk = metrics.install_sdk_metrics(metrics.API)  # before the client: its temporal_* series
    tracing.configure_tracing("whistle-api")
    client = await connect_settings(settings)
    async with open_pool(settings.database_url) as pool, \
            metrics.serving(metrics.endpoint_app(metrics.API), settings.api_metrics_address, sdk) as metrics_url:
        server = api_server(settings, client, pool, jurisdiction, keyring)
        async with server.running() as serving:  # at the block's end: the requests in flight finish, then it closes
            url = f"http://{settings.host}:{settings.api_port}"
            log.info("api.started", url=url, metrics=f"{metrics_url}/metrics", temporal=client.service_client.config.target_host)
            if announce is not None:
                announce(f"API {url}   (OpenAPI {url}/docs); metrics {metrics_url}/metrics")
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
    log.info("api.stopped")
