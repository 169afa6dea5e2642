"""Trace context across NATS: publish and consume spans continue the stored context (P5)."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from helios.kernel.bus_tracing import MESSAGE_ID_HEADER, consuming, publishing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
SUBJECT = "audit.identity.identity.user.signUp"
GARBLED = ["", "00-zz-yy-01", f"00-{'0' * 32}-{PARENT_ID}-01", f"ff-{TRACE_ID}-{PARENT_ID}-01"]


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exported: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider.get_tracer("helios.unit")


def _only(exported: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exported.get_finished_spans()
    return span


def _message(headers: dict[str, str] | None) -> Msg:
    client: Any = None
    return Msg(client, subject=SUBJECT, data=b"", headers=headers)


def _parent_hex(span: ReadableSpan) -> str:
    return "" if span.parent is None else format(span.parent.span_id, "016x")


def test_p5_publish_span_continues_the_stored_context_and_replaces_it_in_the_headers(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    stored = {"traceparent": TRACEPARENT}
    with publishing(SUBJECT, stored, "event-1", tracer=tracer) as headers:
        sent = dict(headers)

    span = _only(exported)
    assert span.kind == trace.SpanKind.PRODUCER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert _parent_hex(span) == PARENT_ID
    assert sent == {
        "traceparent": f"00-{TRACE_ID}-{format(span.context.span_id, '016x')}-01",
        MESSAGE_ID_HEADER: "event-1",
    }
    assert stored == {"traceparent": TRACEPARENT}  # the row's headers are not changed
    assert dict(span.attributes or {}) == {
        "messaging.system": "nats",
        "messaging.operation.type": "send",
        "messaging.destination.name": SUBJECT,
        "messaging.message.id": "event-1",
    }


@pytest.mark.parametrize("traceparent", GARBLED)
def test_p5_publish_without_a_valid_stored_context_starts_a_new_trace(
    tracer: trace.Tracer, exported: InMemorySpanExporter, traceparent: str
) -> None:
    stored = {"traceparent": traceparent} if traceparent else {}
    with publishing(SUBJECT, stored, "event-2", tracer=tracer) as headers:
        sent = headers["traceparent"]

    span = _only(exported)
    assert span.parent is None
    assert format(span.context.trace_id, "032x") != TRACE_ID
    assert sent.split("-")[1] == format(span.context.trace_id, "032x")


def test_p5_failed_publish_marks_the_span_failed_by_exception_type_only(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    with (
        pytest.raises(ConnectionError),
        publishing(SUBJECT, {"traceparent": TRACEPARENT}, "e", tracer=tracer),
    ):
        raise ConnectionError("nats://user:hunter2@nats:4222 refused")

    span = _only(exported)
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.status.description == "ConnectionError"
    assert not span.events


def test_p5_consumer_span_of_each_message_is_the_child_of_its_publisher(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    messages = [
        _message({"traceparent": TRACEPARENT, MESSAGE_ID_HEADER: "event-1"}),
        _message({"traceparent": "00-garbled", MESSAGE_ID_HEADER: "event-2"}),
        _message(None),
    ]
    with consuming(messages, tracer=tracer):
        assert exported.get_finished_spans() == ()  # open while the batch is handled

    spans = {(s.attributes or {})["messaging.message.id"]: s for s in exported.get_finished_spans()}
    assert set(spans) == {"event-1", "event-2", ""}
    assert all(s.kind == trace.SpanKind.CONSUMER for s in spans.values())
    assert all(s.name == f"process {SUBJECT}" for s in spans.values())
    assert format(spans["event-1"].context.trace_id, "032x") == TRACE_ID
    assert _parent_hex(spans["event-1"]) == PARENT_ID
    assert spans["event-2"].parent is None
    assert spans[""].parent is None


def test_p5_consumer_spans_are_failed_when_the_batch_fails(
    tracer: trace.Tracer, exported: InMemorySpanExporter
) -> None:
    with (
        pytest.raises(RuntimeError),
        consuming([_message({"traceparent": TRACEPARENT})], tracer=tracer),
    ):
        raise RuntimeError("database is away")

    span = _only(exported)
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.status.description == "RuntimeError"
