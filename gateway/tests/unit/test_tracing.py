"""The gateway's span per HTTP request and the trace context its upstream calls carry (P5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helios.gateway.tracing import Tracing, incoming_context
from helios.kernel.clients import call_metadata

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
TOKEN = "hls_s3cr3t-token-value"


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def client(exported: InMemorySpanExporter) -> AsyncIterator[httpx.AsyncClient]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))

    async def upstream(_: Request) -> Response:
        # What a handler's gRPC call to a service would send.
        return JSONResponse({k: v for k, v in call_metadata() if isinstance(v, str)})

    async def failing(_: Request) -> Response:
        raise RuntimeError(f"leaked {TOKEN}")

    async def unavailable(_: Request) -> Response:
        return Response(status_code=503)

    app = Starlette(
        routes=[
            Route("/api/upstream", upstream, methods=["GET", "POST"]),
            Route("/api/links/{token}", upstream, methods=["GET"]),
            Route("/api/failing", failing, methods=["GET"]),
            Route("/api/unavailable", unavailable, methods=["GET"]),
            Route("/healthz", upstream, methods=["GET"]),
        ],
        middleware=[Middleware(Tracing, tracer=provider.get_tracer("helios.unit"))],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def _only(exported: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exported.get_finished_spans()
    return span


def _hex(span: ReadableSpan) -> tuple[str, str]:
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


async def test_p5_request_span_continues_an_incoming_traceparent_and_upstream_calls_carry_it(
    client: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    reply = await client.post("/api/upstream", headers={"traceparent": TRACEPARENT})

    span = _only(exported)
    trace_id, span_id = _hex(span)
    assert span.kind == trace.SpanKind.SERVER
    assert span.name == "POST /api/upstream"
    assert trace_id == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert reply.json()["traceparent"].startswith(f"00-{TRACE_ID}-{span_id}-")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "00-not-a-trace-01"},
        {"traceparent": f"00-{'0' * 32}-{PARENT_ID}-01"},
    ],
)
async def test_p5_request_without_a_valid_traceparent_starts_a_new_trace(
    client: httpx.AsyncClient, exported: InMemorySpanExporter, headers: dict[str, str]
) -> None:
    reply = await client.get("/api/upstream", headers=headers)

    span = _only(exported)
    trace_id, span_id = _hex(span)
    assert span.parent is None
    assert trace_id != TRACE_ID
    assert reply.json()["traceparent"].startswith(f"00-{trace_id}-{span_id}-")


def test_p5_only_one_traceparent_is_taken_from_outside() -> None:
    parent = trace.get_current_span(incoming_context([(b"traceparent", TRACEPARENT.encode())]))
    twice = incoming_context([(b"traceparent", TRACEPARENT.encode())] * 2)

    assert format(parent.get_span_context().trace_id, "032x") == TRACE_ID
    assert not trace.get_current_span(twice).get_span_context().is_valid


async def test_p5_tracestate_and_baggage_from_outside_are_not_passed_upstream(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.get(
        "/api/upstream",
        headers={"traceparent": TRACEPARENT, "tracestate": "evil=1", "baggage": "user=admin"},
    )

    sent = reply.json()
    assert sent["traceparent"].split("-")[1] == TRACE_ID
    assert "tracestate" not in sent
    assert "baggage" not in sent


async def test_p5_span_attributes_hold_no_path_query_cookie_or_token(
    client: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    await client.get(
        f"/api/links/{TOKEN}",
        params={"token": TOKEN},
        headers={"cookie": f"helios_session={TOKEN}", "authorization": f"Bearer {TOKEN}"},
    )

    span = _only(exported)
    assert span.name == "GET /api/links/{token}"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/api/links/{token}",
        "http.response.status_code": 200,
    }
    assert TOKEN not in repr(span.to_json())


async def test_p5_failures_mark_the_span_failed_without_their_message(
    client: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    unavailable = await client.get("/api/unavailable")
    failing = await client.get("/api/failing")

    first, second = exported.get_finished_spans()
    assert unavailable.status_code == 503
    assert first.status.status_code == trace.StatusCode.ERROR
    assert failing.status_code == 500
    assert second.status.status_code == trace.StatusCode.ERROR
    assert second.status.description == "RuntimeError"
    assert TOKEN not in second.to_json()


async def test_p5_probes_are_not_traced(
    client: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    reply = await client.get("/healthz")

    assert reply.status_code == 200
    assert exported.get_finished_spans() == ()
