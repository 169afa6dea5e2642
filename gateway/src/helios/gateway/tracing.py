"""A SERVER span per HTTP request, current while it is served, so upstream calls carry its trace."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helios.gateway.metrics import ROUTE_KEY

__all__ = ["Tracing", "incoming_context"]

_tracer = trace.get_tracer("helios.gateway.http")
_trace_context = TraceContextTextMapPropagator()
# Probes and scrapes would drown the traces of real requests.
_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def incoming_context(headers: Iterable[tuple[bytes, bytes]]) -> Context:
    """The trace context a request asks to continue: its one W3C `traceparent` header, and
    nothing else from the internet (no `tracestate`, no `baggage`: outside data would ride our
    gRPC metadata and be stored with every event). An absent, repeated or garbled header gives
    the empty context, so the request starts a new trace."""
    values = [value for name, value in headers if name.lower() == b"traceparent"]
    if len(values) != 1:
        return Context()
    return _trace_context.extract({"traceparent": values[0].decode("latin-1")})


def _route(scope: Scope) -> str:
    """The route template: the transcoder's, else the matched route's path (its raw path only when
    it has no parameters), else `unmatched`; never a path that may carry an id or a token."""
    template = scope.get("state", {}).get(ROUTE_KEY)
    if template:
        return str(template)
    if "endpoint" not in scope:
        return "unmatched"
    if not scope.get("path_params"):
        return str(scope["path"])
    path = scope["path"]
    routes = scope["router"].routes if "router" in scope else []
    return next(
        (
            str(r.path)
            for r in routes
            if getattr(r, "endpoint", None) is scope["endpoint"] and r.path_regex.match(path)
        ),
        "unmatched",
    )


class Tracing:
    """Pure ASGI middleware: each HTTP request but probes and scrapes gets a SERVER span named
    `<METHOD> <route template>`, the child of a valid incoming `traceparent` (see
    `incoming_context`), else the root of a new trace. Attributes are the method, the route
    template and the status only: no path, query, header, cookie or body (they may carry
    tokens). A 5xx response or an exception marks the span failed."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer = _tracer) -> None:
        self.app = app
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTRACED:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else "_OTHER"
        status = 0

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with self._tracer.start_as_current_span(
            method,
            context=incoming_context(scope["headers"]),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, record_status)
            except BaseException as exc:
                # The type only: an exception's message may quote request data.
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                route = _route(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                if status:
                    span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
