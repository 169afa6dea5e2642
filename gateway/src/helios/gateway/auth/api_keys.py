"""API keys at the edge: `Authorization: Bearer hk_...` resolved by identity on every request (no
cache: a revoked key stops at once), and the routes a key may call: transcoded routes whose RPC
permission is one of the key's, nothing else (not the cookie routes under /api/auth)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from starlette.requests import Request

from helios.gateway.auth.bearer import binding_of, resolve_bearer
from helios.gateway.auth.caller import Caller
from helios.gateway.errors import EdgeError
from helios.gateway.transcoding.catalog import HttpBinding
from helios.gateway.transcoding.dispatcher import TRANSCODED_PREFIX
from helios.gateway.upstream import Upstream
from helios.proto.identity.v1 import identity_pb2

__all__ = ["API_KEY_PREFIX", "ApiKeyRoutes", "resolve_api_key"]

API_KEY_PREFIX = "hk_"


async def resolve_api_key(request: Request, key: str) -> tuple[Caller, frozenset[str]]:
    """The caller an API key acts as and the permission keys it is limited to; raises
    EdgeError 401 for a key identity refuses (unknown, revoked, expired, creator gone)."""
    upstream: Upstream = request.app.state.upstream
    reply = await resolve_bearer(
        request,
        upstream.identity.ResolveApiKey,
        identity_pb2.ResolveApiKeyRequest(api_key=key),
        "invalid API key",
    )
    caller = Caller(principal=reply.principal, assertion=reply.assertion, via="api_key")
    return caller, frozenset(reply.permissions)


class ApiKeyRoutes:
    """Decides which routes a key's permission list opens."""

    def __init__(self, bindings: Sequence[HttpBinding]) -> None:
        self._bindings = tuple(bindings)

    def check(self, method: str, path: str, permissions: Collection[str]) -> None:
        """Return when the key may call `method path`; raise EdgeError 403 otherwise. A path
        under /api/v1/ that no route serves passes (the dispatcher answers 404 or 405)."""
        if not path.startswith(TRANSCODED_PREFIX):
            raise EdgeError(
                403, "PERMISSION_DENIED", "API keys are accepted on /api/v1/ routes only"
            )
        binding = binding_of(self._bindings, method, path)
        if binding is None:
            return
        key = binding.permission.partition(":")[0]
        if binding.public or key not in permissions:
            raise EdgeError(
                403,
                "PERMISSION_DENIED",
                f"this API key does not carry {key or 'a permission for this route'}",
            )
