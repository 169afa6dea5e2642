"""Applies the per-IP and per-principal limits before any route runs (pure ASGI)."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from helios.gateway.auth.caller import Caller
from helios.gateway.edge import client_ip
from helios.gateway.errors import error_response
from helios.gateway.ratelimit.limiter import Limit, RateLimiter

__all__ = ["RateLimit"]

_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})


class RateLimit:
    """429 with Retry-After when the request's client IP (`by="ip"`, placed before
    authentication so floods never reach identity) or its authenticated principal
    (`by="principal"`, placed after) is over `per_minute`."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, by: str, per_minute: int) -> None:
        if by not in ("ip", "principal"):
            raise ValueError(f"unknown rate limit key {by!r}")
        self.app = app
        self._limiter = limiter
        self._by = by
        self._per_minute = per_minute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        if self._by == "ip":
            key = f"ip:{client_ip(Request(scope))}"
        else:
            caller: Caller | None = scope.get("state", {}).get("caller")
            if caller is None or caller.principal is None:
                await self.app(scope, receive, send)
                return
            key = f"principal:{caller.principal.actor_id}"
        decision = await self._limiter.hit([Limit(key, self._per_minute)], dt.datetime.now(dt.UTC))
        if decision.allowed:
            await self.app(scope, receive, send)
            return
        response = error_response(429, "RESOURCE_EXHAUSTED", "too many requests; retry later")
        response.headers["retry-after"] = str(decision.retry_after)
        await response(scope, receive, send)
