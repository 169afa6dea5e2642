"""Prometheus metrics of the edge: requests by route template and status, latency; `/metrics`."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ROUTE_KEY", "EdgeMetrics", "metrics_route"]

# Set in scope["state"] by a handler that serves several paths (the transcoder: its template),
# so labels stay bounded.
ROUTE_KEY = "route_template"


class EdgeMetrics:
    """Pure ASGI middleware recording every HTTP request into its own registry."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self._requests = Counter(
            "helios_gateway_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self._latency = Histogram(
            "helios_gateway_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            state = scope.get("state", {})
            route = state.get(ROUTE_KEY) or (scope["path"] if "endpoint" in scope else "unmatched")
            method = scope["method"]
            self._requests.labels(method, route, str(status)).inc()
            self._latency.labels(method, route).observe(time.perf_counter() - started)


def metrics_route(registry: CollectorRegistry) -> Route:
    """`GET /metrics` in the Prometheus text format."""

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])
