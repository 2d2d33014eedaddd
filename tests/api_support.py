"""The HTTP API over the real dev server, read model and worker, with known demo keys."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from api.app import build_deps, create_app
from schemas.principal import Principal, Role
from tests.conftest import TEST_KEYRING, issue_worker
from whistle.codec import EncryptionCodec
from whistle.config import Settings
from whistle.principals import PrincipalStore, demo_principals, hash_key

EXTRA = [
    ("street-donghua", Role.street, "donghua", None),
    ("community-other", Role.community, "heping-a1-c2", None),
    ("grid-other", Role.grid, "heping-a1-c2-g1", None),
]


def key(principal_id: str) -> dict[str, str]:
    return {"X-API-Key": f"key-{principal_id}"}


def store(jurisdiction) -> PrincipalStore:
    return PrincipalStore([
        Principal(id=pid, role=role, unit_id=unit, channel=channel, key_sha256=hash_key(f"key-{pid}"))
        for pid, role, unit, channel in [*demo_principals(jurisdiction), *EXTRA]
    ])


@dataclass
class Api:
    http: httpx.AsyncClient
    app: object
    task_queue: str


@contextlib.asynccontextmanager
async def serve_api(env, jurisdiction, pool, **settings) -> AsyncIterator[Api]:
    async with issue_worker(env.client, jurisdiction, pool) as tq:
        s = Settings(task_queue=tq, token_secret="test-secret", codec_server=True, **settings)
        deps = build_deps(s, env.client, pool, jurisdiction)
        deps.principals = store(jurisdiction)
        app = create_app(deps, s, codec=EncryptionCodec(TEST_KEYRING))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://whistle.test", timeout=30) as http:
            yield Api(http, app, tq)
