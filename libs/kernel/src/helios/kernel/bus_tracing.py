"""Trace context across NATS: a PRODUCER span per publish, a CONSUMER span per delivered message."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from nats.aio.msg import Msg
from opentelemetry import propagate, trace

__all__ = ["MESSAGE_ID_HEADER", "consuming", "publishing"]

MESSAGE_ID_HEADER = "Nats-Msg-Id"
"""JetStream's de-duplication header; Helios sets it to the event id."""

_tracer = trace.get_tracer("helios.kernel.bus")


def _attributes(operation: str, subject: str, message_id: str) -> dict[str, str]:
    # Names, subjects and ids only: payloads and other headers never become attributes.
    return {
        "messaging.system": "nats",
        "messaging.operation.type": operation,
        "messaging.destination.name": subject,
        "messaging.message.id": message_id,
    }


def _failed(span: trace.Span, exc: BaseException) -> None:
    # The type only: an exception's message may quote data that must not leave the process.
    span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))


@contextlib.contextmanager
def publishing(
    subject: str,
    stored: Mapping[str, str],
    message_id: str,
    *,
    tracer: trace.Tracer = _tracer,
) -> Iterator[dict[str, str]]:
    """A PRODUCER span around one publish, the child of the trace context in `stored` (the headers
    saved with the outbox row in the request that made the event; a new trace when they carry no
    valid `traceparent`). Yields the headers to publish: `stored` with this span's context in
    place of the saved one, and `Nats-Msg-Id` = `message_id`. The span ends when the block does;
    an exception marks it failed (by type) and propagates."""
    with tracer.start_as_current_span(
        f"send {subject}",
        context=propagate.extract(stored),
        kind=trace.SpanKind.PRODUCER,
        attributes=_attributes("send", subject, message_id),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        headers = dict(stored)
        propagate.inject(headers)
        headers[MESSAGE_ID_HEADER] = message_id
        try:
            yield headers
        except BaseException as exc:
            _failed(span, exc)
            raise


@contextlib.contextmanager
def consuming(messages: Sequence[Msg], *, tracer: trace.Tracer = _tracer) -> Iterator[None]:
    """One CONSUMER span per message while a batch is handled, each the child of the context its
    publisher put in the message's headers (a new trace when there is none or it is garbled).
    The spans are not made current (a batch has many parents); they end when the block does, and
    an exception marks them all failed (by type) and propagates."""
    spans = [
        tracer.start_span(
            f"process {message.subject}",
            context=propagate.extract(message.headers or {}),
            kind=trace.SpanKind.CONSUMER,
            attributes=_attributes(
                "process", message.subject, (message.headers or {}).get(MESSAGE_ID_HEADER, "")
            ),
        )
        for message in messages
    ]
    try:
        yield
    except BaseException as exc:
        for span in spans:
            _failed(span, exc)
        raise
    finally:
        for span in spans:
            span.end()
