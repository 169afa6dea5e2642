"""The gateway ASGI application: routes, security headers, upstream lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from helios.gateway.headers import SecurityHeaders
from helios.gateway.routes.auth import auth_routes
from helios.gateway.routes.operations import operations_routes
from helios.gateway.settings import GatewaySettings
from helios.gateway.upstream import Upstream

__all__ = ["create_app"]


def create_app(settings: GatewaySettings, connect: Callable[[], Upstream]) -> Starlette:
    """The app; `connect` builds the upstream stubs inside the server's event loop (gRPC aio
    channels belong to the loop that made them) and they are closed on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.upstream = connect()
        try:
            yield
        finally:
            await app.state.upstream.close()

    return Starlette(
        routes=[*operations_routes(settings), *auth_routes(settings)],
        middleware=[Middleware(SecurityHeaders)],
        lifespan=lifespan,
    )
