"""The read model's connection pool. The process that uses it owns it: open it with
`async with open_pool(url) as pool:` so it is closed on every way out."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from whistle.db.migrate import migrate


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=lambda v: json.dumps(v, ensure_ascii=False), decoder=json.loads, schema="pg_catalog")


class ReadModelUnreachable(ConnectionError):
    """The read model's PostgreSQL cannot be reached or refuses the connection, said in one line."""


def _shown(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def reaching(url: str) -> Iterator[None]:
    """Connecting to the read model: a refused connection, an unknown host, a bad password or
    database, a missing TLS file become ReadModelUnreachable, naming WHISTLE_DATABASE_URL."""
    try:
        yield
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ReadModelUnreachable(
            f"cannot reach the read model (PostgreSQL at WHISTLE_DATABASE_URL={_shown(url)}): {reason}"
        ) from exc


async def connect(url: str) -> asyncpg.Connection:
    """One connection to the read model (`whistle migrate`)."""
    with reaching(url):
        return await asyncpg.connect(url)


@contextlib.asynccontextmanager
async def open_pool(url: str, *, apply_migrations: bool = True, min_size: int = 1, max_size: int = 10) -> AsyncIterator[asyncpg.Pool]:
    with reaching(url):
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection)
    try:
        if apply_migrations:
            async with pool.acquire() as conn:
                await migrate(conn)
        yield pool
    finally:
        await pool.close()
