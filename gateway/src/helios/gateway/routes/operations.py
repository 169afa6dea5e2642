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
        backends: dict[str, str] = {}
        for name, stub in upstream.health.items():
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                serving = reply.status == health_pb2.HealthCheckResponse.SERVING
                backends[name] = "serving" if serving else "not serving"
            except grpc.aio.AioRpcError:
                backends[name] = "unreachable"
        ready = all(state == "serving" for state in backends.values())
        body = {"status": "ready" if ready else "not ready", "backends": backends}
        return JSONResponse(body, 200 if ready else 503)

    async def security_txt(request: Request) -> Response:
        base = settings.public_url or f"{request.url.scheme}://{request.url.netloc}"
        expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=180)
        lines = [
            f"Contact: {settings.security_contact}",
            f"Expires: {expires.isoformat().replace('+00:00', 'Z')}",
            "Preferred-Languages: en",
            f"Canonical: {base}/.well-known/security.txt",
        ]
        if settings.security_policy_url:
            lines.append(f"Policy: {settings.security_policy_url}")
        return PlainTextResponse("\n".join(lines) + "\n")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/.well-known/security.txt", security_txt, methods=["GET"]),
    ]
