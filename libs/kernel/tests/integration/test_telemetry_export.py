"""HELIOS_OTEL_EXPORTER=otlp: spans reach an OTLP/gRPC receiver, the last ones at shutdown (P5)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from helios.kernel.testing.trace_collector import TraceCollector

# A process that ends one span and stops at once: the batch delay is far away, so the span can
# only arrive through the flush of `shutdown()`.
_PROCESS = """
from opentelemetry import trace
from helios.kernel.telemetry import configure_tracing

provider = configure_tracing("probe", "otlp")
with trace.get_tracer("probe").start_as_current_span("queued", kind=trace.SpanKind.SERVER):
    pass
provider.shutdown()
"""


@pytest.fixture
def collector() -> Iterator[TraceCollector]:
    receiver = TraceCollector().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def test_p5_otlp_exporter_flushes_queued_spans_when_the_process_shuts_down(
    collector: TraceCollector,
) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert [(s.service, s.name, s.kind, s.parent_span_id) for s in collector.spans()] == [
        ("helios-probe", "queued", "SERVER", "")
    ]
