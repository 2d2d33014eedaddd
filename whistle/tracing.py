"""OpenTelemetry traces: one trace from an HTTP request through the workflow it starts or
updates, the workflow's run and its activities.

Off unless configured, by the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns on export by OTLP over HTTP/protobuf;
OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER…
apply as the OpenTelemetry SDK reads them. Temporal carries the trace context in the headers of
workflow starts, updates and activities (the SDK's TracingInterceptor); FastAPI's
instrumentation makes the request's span their parent.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure_tracing(service_name: str) -> TracerProvider | None:
    """Install the process's tracer provider, exporting by OTLP, when an endpoint is configured;
    None (and nothing installed) otherwise. Call once, before the Temporal client connects."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or not any(os.environ.get(v) for v in _ENDPOINTS):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def enabled() -> bool:
    """A real tracer provider is installed (by configure_tracing, or by `opentelemetry-instrument`)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def temporal_tracing(tracer_provider: TracerProvider | None = None) -> list:
    """The SDK's TracingInterceptor (client and worker) when tracing is on; [] when off, so
    that workflow headers carry no empty trace context."""
    if tracer_provider is None and not enabled():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    provider = tracer_provider or trace.get_tracer_provider()
    return [TracingInterceptor(tracer=provider.get_tracer("temporalio"))]


def instrument_api(app, tracer_provider: TracerProvider | None = None) -> None:
    """A server span for each request (route template as its name), when tracing is on."""
    if tracer_provider is None and not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider or trace.get_tracer_provider(),
                                       excluded_urls="/healthz,/livez")
