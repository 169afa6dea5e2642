"""Liveness, readiness (identity answers health SERVING) and `/.well-known/security.txt`."""

from __future__ import annotations

import datetime as dt

import grpc
from grpc_health.v1 import health_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from helios.gateway.settings import GatewaySettings
from helios.gateway.upstream import Upstream

__all__ = ["operations_routes"]


def operations_routes(settings: GatewaySettings) -> list[Route]:
    """The routes; upstream stubs come from `app.state.upstream`."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        upstream: Upstream = request.app.state.upstream
        try:
            reply = await upstream.identity_health.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        except grpc.aio.AioRpcError:
            return JSONResponse({"status": "not ready", "identity": "unreachable"}, 503)
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            return JSONResponse({"status": "not ready", "identity": "not serving"}, 503)
        return JSONResponse({"status": "ready"})

    async def security_txt(_: Request) -> Response:
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=180)).strftime("%Y-%m-%dT00:00:00Z")
        body = (
            f"Contact: mailto:{settings.security_contact}\n"
            f"Expires: {expires}\n"
            "Preferred-Languages: en\n"
        )
        return PlainTextResponse(body)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/.well-known/security.txt", security_txt, methods=["GET"]),
    ]
