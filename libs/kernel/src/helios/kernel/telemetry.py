"""OpenTelemetry tracing: one provider per process; context rides gRPC and NATS headers."""

from __future__ import annotations

from typing import Literal

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

__all__ = ["Exporter", "configure_tracing"]

Exporter = Literal["none", "console", "otlp"]


def _exporter(kind: Exporter) -> SpanExporter | None:
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        # Endpoint, TLS, headers and timeout come from the standard OTEL_EXPORTER_OTLP_*
        # variables (e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317).
        return OTLPSpanExporter()
    return None


def configure_tracing(service: str, exporter: Exporter) -> TracerProvider:
    """Install the process's tracer provider and return it; the caller calls its `shutdown()`
    when the process stops, which exports the spans still queued.

    `none` still makes spans (their ids go into log lines, audit events and the propagated
    context) but exports nothing; `console` prints them; `otlp` sends them over OTLP/gRPC in
    batches (OTEL_BSP_* tune the batching). OTEL_RESOURCE_ATTRIBUTES may add resource
    attributes (pod, node); `service.name` is always `helios-<service>`."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"helios-{service}"}))
    span_exporter = _exporter(exporter)
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    return provider
