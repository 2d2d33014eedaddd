"""The read model's connection pool. The process that uses it owns it: open it with
`async with open_pool(url) as pool:` so it is closed on every way out."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import asyncpg

from whistle.db.migrate import migrate


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=lambda v: json.dumps(v, ensure_ascii=False), decoder=json.loads, schema="pg_catalog")


@contextlib.asynccontextmanager
async def open_pool(url: str, *, apply_migrations: bool = True, min_size: int = 1, max_size: int = 10) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection)
    try:
        if apply_migrations:
            async with pool.acquire() as conn:
                await migrate(conn)
        yield pool
    finally:
        await pool.close()
