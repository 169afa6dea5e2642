"""AI tokens at the edge (I1): `Authorization: Bearer hai_...` resolved by the AI broker on every
request into a broker-signed AI principal, accepted only on the routes an AI agent may call
(Invoke, ListActions, GetInvocation, BuildPrompt); every other route, the cookie routes under
/api/auth included, is 403 for it."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from helios.gateway.auth.bearer import binding_of, resolve_bearer
from helios.gateway.auth.caller import Caller
from helios.gateway.errors import EdgeError
from helios.gateway.transcoding.catalog import HttpBinding
from helios.gateway.upstream import Upstream
from helios.proto.ai_broker.v1 import ai_broker_pb2

__all__ = ["AI_AGENT_RPCS", "AI_TOKEN_PREFIX", "AiTokenRoutes", "resolve_ai_token"]

AI_TOKEN_PREFIX = "hai_"  # noqa: S105 - a prefix, not a secret
_BROKER = ai_broker_pb2.DESCRIPTOR.services_by_name["AiBrokerService"]
AI_AGENT_RPCS: frozenset[str] = frozenset(
    _BROKER.methods_by_name[name].full_name
    for name in ("Invoke", "ListActions", "GetInvocation", "BuildPrompt")
)
"""The only RPCs an AI token reaches; session management and confirmation need a person."""


async def resolve_ai_token(request: Request, token: str) -> Caller:
    """The AI principal a token acts as (signed by the broker); EdgeError 401 for a token the
    broker refuses (unknown, revoked, expired)."""
    upstream: Upstream = request.app.state.upstream
    reply = await resolve_bearer(
        request,
        upstream.ai_broker.ResolveAiToken,
        ai_broker_pb2.ResolveAiTokenRequest(token=token),
        "invalid AI token",
    )
    return Caller(principal=reply.principal, assertion=reply.assertion, via="ai_token")


class AiTokenRoutes:
    """Decides which routes an AI token opens: those of AI_AGENT_RPCS, nothing else."""

    def __init__(self, bindings: Sequence[HttpBinding]) -> None:
        self._bindings = tuple(bindings)

    def check(self, method: str, path: str) -> None:
        """Return when an AI token may call `method path` (the route the dispatcher picks serves
        one of AI_AGENT_RPCS); raise EdgeError 403 otherwise."""
        binding = binding_of(self._bindings, method, path)
        if binding is None or binding.method.full_name not in AI_AGENT_RPCS:
            raise EdgeError(
                403,
                "PERMISSION_DENIED",
                "AI tokens are accepted only on the AI agent routes (invoke, actions,"
                " invocations, prompts)",
            )
