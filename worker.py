"""The whistle worker: runs every workflow and activity on the task queue `whistle`.

Configured by environment: TEMPORAL_* (address, TLS, API key) or WHISTLE_TEMPORAL_ADDRESS /
WHISTLE_TEMPORAL_NAMESPACE, WHISTLE_CODEC_KEY(S|_FILE), WHISTLE_ACTOR_KEY(S|_FILE), WHISTLE_DATABASE_URL,
WHISTLE_JURISDICTION_FILE, WHISTLE_NOTIFIER; serves /metrics, /livez and /readyz on
WHISTLE_METRICS_ADDRESS (127.0.0.1:9464). `python worker.py` or
`whistle worker`; SIGINT/SIGTERM drain running tasks and stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.briefing import BriefingActivities
from activities.issue import IssueActivities
from activities.notifier import Notifier, notifier_from
from activities.quarterly import QuarterlyActivities
from schemas.jurisdiction import Jurisdiction
from whistle import metrics, tracing
from whistle.config import Settings, load_settings
from whistle.db.pool import open_pool
from whistle.jurisdiction import load_jurisdiction, publish_jurisdiction
from whistle.logging import LogContextInterceptor, configure_logging
from whistle.process import ensure_free, run_until_signalled
from whistle.attest import attested
from whistle.temporal import connect_settings
from workflows.registry import WORKFLOWS

log = structlog.get_logger("whistle.worker")

def build_worker(
    client: Client, jurisdiction: Jurisdiction, pool, notifier: Notifier, task_queue: str,
    replacing: Sequence[Callable] = (), **options
) -> Worker:
    """The worker of every workflow and activity; `replacing` runs some activities in place of
    whistle's of the same name (a test's fake, which must behave as the activity may)."""
    # The client's ActorAttestation is also this worker's interceptor: it refuses every update
    # whose actor the gateway did not attest. A worker without it would accept forged actors.
    if not attested(client):
        raise ValueError("the worker's client has no actor attestation: connect with actor keys")
    activities = (
        IssueActivities(jurisdiction, pool, notifier).all() + QuarterlyActivities(jurisdiction, pool).all()
        + BriefingActivities(jurisdiction, pool).all()
    )
    replaced = {activity_name(a) for a in replacing}
    activities = [a for a in activities if activity_name(a) not in replaced] + list(replacing)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities,
        interceptors=[LogContextInterceptor()],
        **{"graceful_shutdown_timeout": timedelta(seconds=10), **options},
    )


def activity_name(fn: Callable) -> str:
    return activity._Definition.must_from_callable(fn).name


def worker_options(settings: Settings) -> dict[str, Any]:
    """What settings change in the production worker."""
    return {"max_cached_workflows": settings.max_cached_workflows}


async def serve(settings: Settings, stop: asyncio.Event, announce: Callable[[str], None] | None = None) -> None:
    """Run the worker until `stop` is set; `announce` is told where its metrics are."""
    if not settings.database_url:
        raise SystemExit("WHISTLE_DATABASE_URL is not set: the worker needs the read model")
    jurisdiction = load_jurisdiction(settings.jurisdiction_file)
    ensure_free(*metrics.split_address(settings.metrics_address), "WHISTLE_METRICS_ADDRESS")
    sdk = metrics.install_sdk_metrics(metrics.WORKER)  # before the client: it keeps its runtime
    tracing.configure_tracing("whistle-worker")  # before the client too: it takes the interceptor then
    client = await connect_settings(settings)
    async with open_pool(settings.database_url) as pool:
        await publish_jurisdiction(pool, jurisdiction)
        worker = build_worker(
            client, jurisdiction, pool, notifier_from(settings.notifier), settings.task_queue, **worker_options(settings)
        )
        log.info("worker.started", task_queue=settings.task_queue, temporal=client.service_client.config.target_host,
                 max_cached_workflows=settings.max_cached_workflows)
        endpoint = metrics.worker_endpoint(client, pool, worker)
        async with worker, metrics.serving(endpoint, settings.metrics_address, sdk) as url:
            log.info("worker.metrics", url=f"{url}/metrics")
            if announce is not None:
                announce(f"worker on task queue {settings.task_queue}; metrics {url}/metrics (/readyz, /livez)")
            await stop.wait()
        log.info("worker.stopped")


def main(announce: Callable[[str], None] | None = None) -> None:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    run_until_signalled(lambda stop: serve(settings, stop, announce))


if __name__ == "__main__":
    main()
