"""The gateway ASGI application: middleware, explicit routes, transcoded routes, errors."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from helios.gateway.auth.cache_cookie import SessionCache
from helios.gateway.auth.middleware import Authentication
from helios.gateway.auth.revocations import RevocationFeed, Revocations, revocation_hooks
from helios.gateway.errors import error_response
from helios.gateway.headers import SecurityHeaders
from helios.gateway.metrics import EdgeMetrics, metrics_route
from helios.gateway.openapi import openapi_routes
from helios.gateway.proxies import TrustedProxies
from helios.gateway.ratelimit.limiter import MemoryRateLimiter, PostgresRateLimiter, RateLimiter
from helios.gateway.ratelimit.middleware import RateLimit
from helios.gateway.routes.auth import auth_routes
from helios.gateway.routes.impersonation import impersonation_routes
from helios.gateway.routes.live import live_routes
from helios.gateway.routes.operations import operations_routes
from helios.gateway.settings import GatewaySettings
from helios.gateway.tracing import Tracing
from helios.gateway.transcoding.catalog import load_bindings
from helios.gateway.transcoding.dispatcher import transcoding_route
from helios.gateway.upstream import Upstream
from helios.kernel.bus import Bus
from helios.kernel.db import create_engine
from helios.kernel.runtime import nats_tls, verifier_from

__all__ = ["create_app"]


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_ARGUMENT")
    return error_response(exc.status_code, code, str(exc.detail).lower())


async def _server_error(_: Request, __: Exception) -> Response:
    return error_response(500, "INTERNAL", "internal error")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_app(
    settings: GatewaySettings,
    connect: Callable[[], Upstream],
    clock: Callable[[], dt.datetime] = _utc_now,
) -> Starlette:
    """The app; `connect` builds the upstream channels inside the server's event loop (gRPC aio
    channels belong to the loop that made them) and they are closed on shutdown. `clock` times
    the session cache cookie and the revocations (S2, S3). With HELIOS_NATS_URL, a revocation
    feed runs while the app serves (`app.state.revocation_feed`). With HELIOS_METRICS_PORT,
    `/metrics` is not on this app but on `app.state.metrics_app`."""
    bindings = load_bindings()
    cache = SessionCache(settings.cookie_key_file.read_bytes(), verifier_from(settings), clock)
    revocations = Revocations(clock)
    bus = (
        Bus(
            settings.nats_url,
            "gateway",
            settings.nats_stream_replicas,
            nats_tls(settings, settings.nats_url),
        )
        if settings.nats_url
        else None
    )
    feed = RevocationFeed(bus, revocations, clock) if bus else None
    engine = (
        create_engine(settings.database_url.get_secret_value(), settings.database_role)
        if settings.database_url is not None
        else None
    )
    limiter: RateLimiter = PostgresRateLimiter(engine) if engine else MemoryRateLimiter()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.upstream = connect()
        stop = asyncio.Event()
        feeding = asyncio.create_task(feed.run(stop)) if feed else None
        try:
            yield
        finally:
            stop.set()
            if feeding is not None:
                await feeding
            if bus is not None:
                await bus.close()
            await app.state.upstream.close()
            if engine is not None:
                await engine.dispose()

    registry = CollectorRegistry()
    public_metrics = [] if settings.metrics_port else [metrics_route(registry)]
    app = Starlette(
        routes=[
            *public_metrics,
            *operations_routes(settings),
            *openapi_routes(bindings),
            *auth_routes(settings),
            *impersonation_routes(settings),
            *live_routes(settings),
            transcoding_route(bindings, settings.max_body_bytes, revocation_hooks(revocations)),
        ],
        middleware=[
            Middleware(Tracing),
            Middleware(SecurityHeaders),
            Middleware(EdgeMetrics, registry=registry),
            Middleware(
                RateLimit,
                limiter=limiter,
                by="ip",
                per_minute=settings.rate_limit_per_ip_per_minute,
            ),
            Middleware(
                Authentication,
                cache=cache,
                allowed_origins=settings.allowed_origins,
                secure=settings.cookie_secure,
                revocations=revocations,
            ),
            Middleware(
                RateLimit,
                limiter=limiter,
                by="principal",
                per_minute=settings.rate_limit_per_principal_per_minute,
            ),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
    app.state.revocations = revocations
    app.state.revocation_feed = feed
    # With HELIOS_METRICS_PORT, /metrics is this app's alone (served on that port by __main__).
    app.state.metrics_app = (
        Starlette(routes=[metrics_route(registry)]) if settings.metrics_port else None
    )
    return app
