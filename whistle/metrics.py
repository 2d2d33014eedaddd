"""Prometheus metrics: the Temporal SDK's, the API's and whistle's own, one `/metrics` per role.

Two registries, one per role, so that `whistle dev` (worker and API in one process) never shows
a series on both endpoints: WORKER (business metrics recorded by the activities, open issues,
schedules) is served on WHISTLE_METRICS_ADDRESS with `/livez` and `/readyz`; API (requests by
route and status) on WHISTLE_API_METRICS_ADDRESS.

The SDK's metrics (`temporal_*`) come through a `MetricBuffer` rather than the SDK's own
Prometheus exporter: the exporter would bind a third port per process, with its own scrape
target and its own name rules. The buffer hands us each update; `SdkMetrics` folds them into
this process's endpoint, so one scrape of a worker shows its workflow-task failures next to the
deadlines it acted on late. Only a client's runtime carries SDK metrics: the process's default
runtime is replaced before the first client connects (`install_sdk_metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any

import structlog
import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from whistle import health

log = structlog.get_logger("whistle.metrics")
_RPC_TIMEOUT = timedelta(seconds=3)  # a scrape waits no longer for Temporal
disable_created_metrics()  # no `_created` series beside every counter: nothing here reads them

WORKER = CollectorRegistry()
API = CollectorRegistry()
for _registry in (WORKER, API):
    for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        _registry.register(_collector)

# -- business, recorded by the activities (never by workflow code: it replays) ----------------
ISSUES_OPENED = Counter("whistle_issues_opened", "Issues opened", ["channel", "category"], registry=WORKER)
ISSUES_CLOSED = Counter("whistle_issues_closed", "Issues closed", ["channel", "category", "outcome"], registry=WORKER)
TRANSITIONS = Counter("whistle_transitions", "Issue transitions recorded, by event kind", ["kind"], registry=WORKER)
PENALTIES = Counter("whistle_penalties", "Penalties (罚单) recorded against a unit", ["unit", "kind"], registry=WORKER)
# How long after its due time a workflow timer was acted on: the event's time (workflow.now()
# of the task that acted) minus the deadline's (or the reminder's) due time. Timers fire late
# when workers are short or workflows must replay after a cache eviction.
DEADLINE_LATENESS = Histogram(
    "whistle_deadline_lateness_seconds", "How late a deadline or reminder timer was acted on",
    ["timer"], registry=WORKER,
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 86400),
)
NOTIFICATIONS_SENT = Counter("whistle_notifications_sent", "Notifications delivered to the notifier (kind=reminder: 催办)",
                             ["kind"], registry=WORKER)
NOTIFICATIONS_FAILED = Counter("whistle_notifications_failed", "Notification attempts that failed (each is retried)",
                               ["kind"], registry=WORKER)
READ_MODEL_RETRIES = Counter("whistle_read_model_write_retries", "Read-model writes run again after a failed attempt",
                             ["activity"], registry=WORKER)
READ_MODEL_FAILURES = Counter("whistle_read_model_write_failures", "Read-model write attempts that failed",
                              ["activity", "error"], registry=WORKER)

# -- API -------------------------------------------------------------------------------------
API_REQUESTS = Counter("whistle_api_requests", "HTTP requests answered, by route template and status",
                       ["method", "route", "status"], registry=API)
API_LATENCY = Histogram(
    "whistle_api_request_duration_seconds", "HTTP request latency, by route template", ["method", "route"],
    registry=API, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """ASGI middleware: each request counted by method, route template (`/v1/issues/{issue_id}`,
    never the raw path: ids would make a series each) and status, and timed. Requests that match
    no route (404s, bodies refused before routing) are `unmatched`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            API_REQUESTS.labels(method, route, str(status)).inc()
            API_LATENCY.labels(method, route).observe(time.perf_counter() - start)


# -- gauges read at scrape time ----------------------------------------------------------------
class CachedGauges(Collector):
    """Gauges computed by `load` (a coroutine returning metric families), at most every `ttl`
    seconds: `refresh` runs on the event loop before each scrape; `collect` serves the cache.

    Open issues come from the read model, not from counters kept in memory: each worker sees only
    the issues it happened to run, and its counters restart at zero with it, while the read
    model is the truth for the whole district and one GROUP BY over the open issues is cheap."""

    def __init__(self, load: Callable[[], Awaitable[list[Metric]]], ttl: float = 10.0):
        self.load, self.ttl = load, ttl
        self._families: list[Metric] = []
        self._at = -math.inf

    async def refresh(self) -> None:
        if time.monotonic() - self._at < self.ttl:
            return
        self._at = time.monotonic()  # a failing source is asked again only after ttl
        self._families = await self.load()

    def collect(self) -> Iterable[Metric]:
        return list(self._families)


def open_issues_loader(pool) -> Callable[[], Awaitable[list[Metric]]]:
    from whistle.db import queries

    async def load() -> list[Metric]:
        family = GaugeMetricFamily("whistle_open_issues", "Open issues by stage, street and overdue (from the read model)",
                                   labels=["stage", "street", "overdue"])
        async with pool.acquire() as conn:
            for row in await conn.fetch(queries.OPEN_ISSUES, timeout=5):
                family.add_metric([row["stage"], row["street"], str(row["overdue"]).lower()], row["n"])
        return [family]

    return load


def schedules_loader(client, schedule_ids: Iterable[str]) -> Callable[[], Awaitable[list[Metric]]]:
    """When each Schedule last ran, whether it is paused, runs it missed: the quarterly run
    happens four times a year, so "it has not run" is only seen by comparing times."""
    from temporalio.service import RPCError

    async def load() -> list[Metric]:
        last = GaugeMetricFamily("whistle_schedule_last_run_timestamp_seconds",
                                 "When the Schedule last started its workflow (its creation if never)", labels=["schedule"])
        nxt = GaugeMetricFamily("whistle_schedule_next_run_timestamp_seconds", "When the Schedule runs next", labels=["schedule"])
        paused = GaugeMetricFamily("whistle_schedule_paused", "1 when the Schedule is paused", labels=["schedule"])
        missed = GaugeMetricFamily("whistle_schedule_missed_runs",
                                   "Runs the Schedule skipped: past the catch-up window or overlapping", labels=["schedule"])
        for sid in schedule_ids:
            try:
                d = await client.get_schedule_handle(sid).describe(rpc_timeout=_RPC_TIMEOUT)
            except RPCError:
                continue  # not created (yet): the alert on an absent series says so
            ran = [a.started_at for a in d.info.recent_actions] or [d.info.created_at]
            last.add_metric([sid], max(ran).timestamp())
            if d.info.next_action_times:
                nxt.add_metric([sid], min(d.info.next_action_times).timestamp())
            paused.add_metric([sid], float(d.schedule.state.paused))
            missed.add_metric([sid], d.info.num_actions_missed_catchup_window + d.info.num_actions_skipped_overlap)
        return [last, nxt, paused, missed]

    return load


# -- the SDK's metrics -------------------------------------------------------------------------
# Seconds, as Prometheus names them; workflow tasks and activities take milliseconds to minutes.
_SDK_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class SdkMetrics(Collector):
    """The Temporal SDK's metric updates (`temporal_*`), drained from a MetricBuffer and folded
    into counters, gauges and histograms. A metric's label set may differ between updates (the
    client's `temporal_request` has `task_queue` only for some operations), so samples carry
    their own labels. Drained on every scrape and every second in between, so the buffer never
    fills (the SDK drops updates when it is full)."""

    def __init__(self, buffer: MetricBuffer):
        self.buffer = buffer
        self._meta: dict[str, tuple[int, str]] = {}  # name -> (kind, help)
        self._values: dict[str, dict[tuple, Any]] = {}

    def drain(self) -> None:
        for update in self.buffer.retrieve_updates():
            m = update.metric
            name = m.name + ("_seconds" if m.unit == "s" and not m.name.endswith("_seconds") else "")
            self._meta.setdefault(name, (m.kind, m.description or m.name))
            series = self._values.setdefault(name, {})
            key = tuple(sorted((k, str(v)) for k, v in update.attributes.items()))
            if m.kind == BUFFERED_METRIC_KIND_COUNTER:
                series[key] = series.get(key, 0) + update.value
            elif m.kind == BUFFERED_METRIC_KIND_GAUGE:
                series[key] = update.value
            else:
                counts, total = series.get(key, ([0] * (len(_SDK_BUCKETS) + 1), 0.0))
                for i, bound in enumerate(_SDK_BUCKETS):
                    if update.value <= bound:
                        counts[i] += 1
                counts[-1] += 1
                series[key] = (counts, total + update.value)

    def collect(self) -> Iterable[Metric]:
        self.drain()
        for name, (kind, help_text) in sorted(self._meta.items()):
            if kind == BUFFERED_METRIC_KIND_COUNTER:
                family = Metric(name, help_text, "counter")
                for key, value in self._values[name].items():
                    family.add_sample(name + "_total", dict(key), value)
            elif kind == BUFFERED_METRIC_KIND_GAUGE:
                family = Metric(name, help_text, "gauge")
                for key, value in self._values[name].items():
                    family.add_sample(name, dict(key), value)
            else:
                family = Metric(name, help_text, "histogram")
                for key, (counts, total) in self._values[name].items():
                    labels = dict(key)
                    for bound, count in zip((*_SDK_BUCKETS, math.inf), counts):
                        family.add_sample(name + "_bucket", {**labels, "le": _le(bound)}, count)
                    family.add_sample(name + "_count", labels, counts[-1])
                    family.add_sample(name + "_sum", labels, total)
            yield family


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(float(bound))


def install_sdk_metrics(registry: CollectorRegistry, telemetry: TelemetryConfig | None = None) -> SdkMetrics:
    """Make the process's default Temporal runtime record into a buffer served by `registry`.
    Call before the first client connects: a client keeps the runtime it was made with."""
    buffer = MetricBuffer(100_000, MetricBufferDurationFormat.SECONDS)
    base = telemetry or TelemetryConfig()
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=base.logging, metrics=buffer)), error_if_already_set=False)
    previous = _SDK_INSTALLED.pop(id(registry), None)
    if previous is not None:
        registry.unregister(previous)
    sdk = _SDK_INSTALLED[id(registry)] = SdkMetrics(buffer)
    registry.register(sdk)
    return sdk


_SDK_INSTALLED: dict[int, SdkMetrics] = {}


# -- the endpoint ------------------------------------------------------------------------------

def endpoint_app(
    registry: CollectorRegistry,
    refresh: Iterable[CachedGauges] = (),
    ready: dict[str, health.Check] | None = None,
) -> Starlette:
    """`/metrics`, `/livez` (200 while the event loop answers: this app runs on it) and, when
    `ready` checks are given, `/readyz` (200 only when every check passes, else 503 naming them)."""
    refresh = list(refresh)
    own = CollectorRegistry()  # this endpoint's read-at-scrape gauges, beside the process's registry
    for gauges in refresh:
        own.register(gauges)

    async def metrics(_: Request) -> Response:
        for gauges in refresh:
            try:
                await gauges.refresh()
            except Exception as exc:  # a source that is down leaves its gauges out; the rest is served
                log.warning("metrics.gauges_failed", error=f"{type(exc).__name__}: {exc}")
                gauges._families = []
        return Response(generate_latest(registry) + generate_latest(own), media_type=CONTENT_TYPE_LATEST)

    async def livez(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        down = await health.run_checks(ready or {})
        if down:
            return JSONResponse({"status": "not ready", "down": down}, status_code=503)
        return JSONResponse({"status": "ready"})

    routes = [Route("/metrics", metrics), Route("/livez", livez)]
    if ready is not None:
        routes.append(Route("/readyz", readyz))
    return Starlette(routes=routes)


class InLoopServer(uvicorn.Server):
    """uvicorn inside the caller's loop: the process handles its own signals (`whistle dev`,
    `whistle api`, every metrics endpoint)."""

    def capture_signals(self):
        return contextlib.nullcontext()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[asyncio.Task]:
        """Serve for the block: yields the serving task once it listens (a failure to start is
        raised here); then finishes the requests in flight and closes."""
        task = asyncio.create_task(self.serve())
        while not self.started:
            if task.done():
                task.result()
                raise OSError(f"did not start on {self.config.host}:{self.config.port}")
            await asyncio.sleep(0.02)
        try:
            yield task
        finally:
            self.should_exit = True
            await task


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a metrics address is host:port, not {address!r}")
    return host.strip("[]"), int(port)


@contextlib.asynccontextmanager
async def serving(app: Starlette, address: str, sdk: SdkMetrics | None = None) -> AsyncIterator[str]:
    """Serve `app` on `address` for the block; yields its base URL (with the port the system
    chose when `address` asks for port 0)."""
    host, port = split_address(address)
    server = InLoopServer(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off"))
    async with server.running():
        port = server.servers[0].sockets[0].getsockname()[1]
        drainer = asyncio.create_task(_drain_every_second(sdk)) if sdk is not None else None
        try:
            yield f"http://{host}:{port}"
        finally:
            if drainer is not None:
                drainer.cancel()


async def _drain_every_second(sdk: SdkMetrics) -> None:
    while True:
        await asyncio.sleep(1)
        sdk.drain()


def worker_endpoint(client, pool, worker) -> Starlette:
    """The worker's `/metrics`, `/livez` and `/readyz`: ready when Temporal answers, the pool
    reaches PostgreSQL and the worker is polling its task queue."""
    from whistle.schedules import SCHEDULE_ID

    async def polling() -> str | None:
        if not worker.is_running or worker.is_shutdown:
            return "the worker is not polling its task queue"
        return None

    return endpoint_app(
        WORKER,
        refresh=[CachedGauges(open_issues_loader(pool)), CachedGauges(schedules_loader(client, [SCHEDULE_ID]), ttl=60)],
        ready={"temporal": health.temporal_check(client), "postgres": health.postgres_check(pool), "worker": polling},
    )
