"""Traces: one trace from `POST /v1/issues` through StartWorkflow, RunWorkflow and the
workflow's activities, through the production wiring (the client's interceptors, FastAPI's
instrumentation) with an in-memory exporter in place of OTLP."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from activities.notifier import MemoryNotifier
from api.app import build_deps, create_app
from tests.api_support import key, store
from tests.conftest import TEST_KEYRING
from whistle import tracing
from whistle.codec import EncryptionCodec
from whistle.config import Settings
from whistle.temporal import client_interceptors
from worker import build_worker


def test_tracing_is_off_unless_configured(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.configure_tracing("whistle-test") is None
    assert client_interceptors() == [] and not tracing.enabled()


async def test_one_trace_from_the_request_through_the_workflow_and_its_activities(dev_env, demo, pool):
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    from tests.conftest import ATTESTATION

    client = Client(**{**dev_env.client.config(), "interceptors": ATTESTATION + client_interceptors(provider)})
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=tq, token_secret="test-secret")
    deps = build_deps(settings, client, pool, demo)
    deps.principals = store(demo)
    app = create_app(deps, settings, codec=EncryptionCodec(TEST_KEYRING), tracer_provider=provider)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with build_worker(client, demo, pool, MemoryNotifier(), tq), \
            httpx.AsyncClient(transport=transport, base_url="http://whistle.test") as http:
        r = await http.post("/v1/issues", headers=key("hotline-12345"), json={
            "channel": "hotline", "reference": f"tr-{uuid.uuid4().hex[:8]}", "category": "tree-trimming",
            "grid_id": "heping-a1-c1-g1", "description": "树枝挡路",
        })
        assert r.status_code == 201, r.text
        for _ in range(100):
            names = {s.name for s in spans.get_finished_spans()}
            if "RunActivity:record_transition" in names:
                break
            await asyncio.sleep(0.1)
    finished = spans.get_finished_spans()
    request = next(s for s in finished if s.name == "POST /v1/issues" and s.kind.name == "SERVER")
    in_trace = [s for s in finished if s.context.trace_id == request.context.trace_id]
    names = {s.name for s in in_trace}
    assert {"StartUpdateWithStartWorkflow:IssueWorkflow", "HandleUpdate:register", "RunWorkflow:IssueWorkflow",
            "StartActivity:resolve_issue_context", "RunActivity:resolve_issue_context",
            "RunActivity:record_transition"} <= names, sorted(names)
    by_id = {s.context.span_id: s for s in in_trace}

    def ancestors(span):
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            yield span.name

    start = next(s for s in in_trace if s.name == "StartUpdateWithStartWorkflow:IssueWorkflow")
    assert "POST /v1/issues" in set(ancestors(start))
    run_activity = next(s for s in in_trace if s.name == "RunActivity:record_transition")
    assert "StartUpdateWithStartWorkflow:IssueWorkflow" in set(ancestors(run_activity))


def test_otlp_export_when_the_endpoint_is_set(tmp_path):
    """In a process of its own (the tracer provider is global): OTEL_EXPORTER_OTLP_ENDPOINT set,
    spans reach an OTLP/HTTP receiver at /v1/traces, and the Temporal client gets the interceptor."""
    import http.server
    import os
    import subprocess
    import sys
    import threading

    received: list[tuple[str, bytes]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = (
        "from whistle import tracing; from whistle.temporal import client_interceptors\n"
        "p = tracing.configure_tracing('whistle-test')\n"
        "assert p is not None and tracing.enabled()\n"
        "assert [type(i).__name__ for i in client_interceptors()] == ['TracingInterceptor']\n"
        "with p.get_tracer('t').start_as_current_span('whistle-otlp-check'): pass\n"
        "p.shutdown()\n"
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}"}
    try:
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert [path for path, _ in received] == ["/v1/traces"]
    assert b"whistle-otlp-check" in received[0][1] and b"whistle-test" in received[0][1]
