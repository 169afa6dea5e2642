"""OpenTelemetry tracing: one provider per process; context rides gRPC and NATS headers."""

from __future__ import annotations

from typing import Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

__all__ = ["configure_tracing"]


def configure_tracing(service: str, exporter: Literal["none", "console"]) -> None:
    """Install the process's tracer provider; spans are exported only when an exporter is set."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"helios-{service}"}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
