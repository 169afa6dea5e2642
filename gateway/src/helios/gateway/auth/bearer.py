"""What every bearer credential shares at the edge: it is resolved upstream on every request (no
cache: a revoked credential stops at once), and it opens routes chosen by the RPC they serve."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from starlette.requests import Request

from helios.gateway.edge import client_ip, user_agent
from helios.gateway.errors import EdgeError
from helios.gateway.transcoding.catalog import HttpBinding
from helios.gateway.upstream import Upstream
from helios.kernel.clients import call_metadata

__all__ = ["binding_of", "resolve_bearer"]

R = TypeVar("R")


async def resolve_bearer(
    request: Request, resolve: Callable[..., Awaitable[R]], message: Any, refused: str
) -> R:
    """The reply of `resolve(message)` (a Resolve* RPC of the credential's issuer) called with the
    client's address and user agent; EdgeError 401 when the issuer refuses the credential."""
    upstream: Upstream = request.app.state.upstream
    try:
        return await resolve(
            message,
            metadata=call_metadata(client_ip=client_ip(request), user_agent=user_agent(request)),
            timeout=upstream.timeout,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise EdgeError(401, "UNAUTHENTICATED", exc.details() or refused) from exc
        raise


def binding_of(bindings: Sequence[HttpBinding], method: str, path: str) -> HttpBinding | None:
    """The transcoded route that serves `method path`, or None."""
    for binding in bindings:
        if binding.verb == method and binding.template.match(path) is not None:
            return binding
    return None
