"""The read model's migrations on a real (embedded) PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import asyncpg
import pytest

from whistle.db import queries
from whistle.db.migrate import Migration, discover, migrate
from whistle.jurisdiction import publish_jurisdiction

TABLES = {
    "units",
    "categories",
    "issues",
    "issue_events",
    "assignments",
    "penalties",
    "ratings",
    "league_tables",
    "evaluation_rounds",
    "evaluation_targets",
    "league_publications",
    "briefings",
    "schema_migrations",
}


@pytest.fixture
async def conn(db_url):
    c = await asyncpg.connect(db_url)
    try:
        yield c
    finally:
        await c.close()


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    return {r["table_name"] for r in rows}


async def _schema(conn: asyncpg.Connection) -> tuple[list, list]:
    columns = await conn.fetch(
        """SELECT table_name, column_name, data_type, is_nullable, column_default
           FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"""
    )
    indexes = await conn.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
    )
    return [tuple(r) for r in columns], [tuple(r) for r in indexes]


async def _advisory_locks(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
    )


async def test_migrate_creates_the_read_model(conn):
    assert await _tables(conn) == set()
    applied = await migrate(conn)
    assert applied == [m.version for m in discover()]
    assert 1 in applied
    assert await _tables(conn) == TABLES
    recorded = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["checksum"]) for r in recorded] == [(m.version, m.checksum) for m in discover()]
    assert await _advisory_locks(conn) == 0


async def test_migrate_twice_changes_nothing(conn):
    await migrate(conn)
    before = await _schema(conn)
    assert before[0] and before[1]
    assert await migrate(conn) == []
    assert await _schema(conn) == before
    assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(discover())


async def test_edited_migration_is_refused(conn):
    original = Migration(1, "first", "CREATE TABLE first_table (id integer PRIMARY KEY)")
    edited = Migration(1, "first", "CREATE TABLE first_table (id bigint PRIMARY KEY)")
    assert original.checksum != edited.checksum
    assert await migrate(conn, [original]) == [1]
    with pytest.raises(RuntimeError, match="edited"):
        await migrate(conn, [edited])
    # The refusal released the lock and touched nothing.
    assert await _advisory_locks(conn) == 0
    assert await conn.fetchval("SELECT checksum FROM schema_migrations WHERE version = 1") == original.checksum
    assert await migrate(conn, [original]) == []


async def test_later_migrations_apply_in_order(conn):
    first = Migration(1, "first", "CREATE TABLE t (id integer)")
    second = Migration(2, "second", "ALTER TABLE t ADD COLUMN note text")
    assert await migrate(conn, [first]) == [1]
    assert await migrate(conn, [first, second]) == [2]
    columns = await conn.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 't' ORDER BY 1")
    assert [r["column_name"] for r in columns] == ["id", "note"]


async def test_failed_migration_is_rolled_back_and_not_recorded(conn):
    good = Migration(1, "good", "CREATE TABLE good (id integer)")
    bad = Migration(2, "bad", "CREATE TABLE half (id integer); SELECT no_such_function()")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(conn, [good, bad])
    assert await _tables(conn) == {"schema_migrations", "good"}
    assert await conn.fetchval("SELECT array_agg(version) FROM schema_migrations") == [1]
    assert await _advisory_locks(conn) == 0


async def test_issue_events_insert_is_idempotent(pool):
    at = datetime(2026, 3, 9, 2, 0, tzinfo=timezone.utc)
    row = ("iss-1", 1, at, "received", None, "grid", "heping-a1-c1-g1", "u1", "grid_worker", {"note": "first"})
    retry = (*row[:3], "something-else", *row[4:9], {"note": "retry"})
    async with pool.acquire() as c:
        await c.execute(queries.INSERT_EVENT, *row)
        await c.execute(queries.INSERT_EVENT, *retry)
        await c.execute(queries.INSERT_EVENT, *row)
        rows = await c.fetch("SELECT kind, detail FROM issue_events WHERE issue_id = 'iss-1'")
        # The next seq is a new event.
        await c.execute(queries.INSERT_EVENT, "iss-1", 2, at, "escalated", "grid", "community", None, None, None, {})
        count = await c.fetchval("SELECT count(*) FROM issue_events WHERE issue_id = 'iss-1'")
    assert len(rows) == 1
    detail = rows[0]["detail"]
    assert rows[0]["kind"] == "received"
    assert (json.loads(detail) if isinstance(detail, str) else detail) == {"note": "first"}
    assert count == 2


async def test_publish_jurisdiction_twice_is_idempotent(pool, demo):
    async def counts() -> tuple[int, int]:
        async with pool.acquire() as c:
            return (
                await c.fetchval("SELECT count(*) FROM units"),
                await c.fetchval("SELECT count(*) FROM categories"),
            )

    first = await counts()
    assert first == (len(demo.units) + len(demo.departments), len(demo.categories))
    await publish_jurisdiction(pool, demo)
    assert await counts() == first
    async with pool.acquire() as c:
        departments = await c.fetchval("SELECT count(*) FROM units WHERE level = 'department'")
        grid = await c.fetchrow("SELECT parent_id, level FROM units WHERE id = 'heping-a1-c1-g1'")
    assert departments == len(demo.departments)
    assert (grid["parent_id"], grid["level"]) == ("heping-a1-c1", "grid")
