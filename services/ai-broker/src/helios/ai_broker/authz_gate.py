"""The Authz port over authz's Check, GetSubjectSnapshot and GetDangerousActions RPCs, asked
as the `ai-broker` service identity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc

from helios.ai_broker.ports import AuthzDecision
from helios.kernel.clients import LazyChannel, call_metadata
from helios.kernel.errors import UnavailableError
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

if TYPE_CHECKING:
    from helios.proto.authz.v1.authz_pb2_grpc import AuthzServiceAsyncStub

__all__ = ["GrpcAuthz"]

_TIMEOUT = 5.0
_SCOPES = {
    "own": authz_pb2.SCOPE_OWN,
    "team": authz_pb2.SCOPE_TEAM,
    "any": authz_pb2.SCOPE_ANY,
}
_SCOPE_NAMES = {value: name for name, value in _SCOPES.items()}
# authz refusing the question itself (a malformed key, a principal in no org): a deny.
_NO_DECISION_POSSIBLE = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED}
)


def _scoped(narrowing: Sequence[str]) -> list[authz_pb2.ScopedPermission]:
    scoped = []
    for item in narrowing:
        key, _, scope = item.partition(":")
        scoped.append(
            authz_pb2.ScopedPermission(
                permission=key, scope=_SCOPES.get(scope, authz_pb2.SCOPE_UNSPECIFIED)
            )
        )
    return scoped


class GrpcAuthz:
    """Asks authz for every decision (minimize_latency: authz answers from its cache); an authz
    that cannot answer raises UnavailableError: never an allow without a decision."""

    def __init__(self, target: str, certs: CertFiles) -> None:
        self._channel = LazyChannel(target, certs)

    def _stub(self) -> AuthzServiceAsyncStub:
        return authz_pb2_grpc.AuthzServiceStub(self._channel.get())

    async def check(
        self,
        principal: principal_pb2.Principal,
        permission: str,
        *,
        narrowing: Sequence[str] = (),
        org_id: str = "",
        owner_id: str = "",
        team_id: str = "",
    ) -> AuthzDecision:
        request = authz_pb2.CheckRequest(
            principal=principal,
            permission=permission,
            resource=authz_pb2.Resource(
                type=permission.rsplit(".", 1)[0],
                org_id=org_id,
                owner_id=owner_id,
                team_id=team_id,
            ),
            ai_narrowing=_scoped(narrowing),
        )
        try:
            reply: authz_pb2.CheckResponse = await self._stub().Check(
                request, timeout=_TIMEOUT, metadata=call_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NO_DECISION_POSSIBLE:
                return AuthzDecision(allowed=False, decision_id="", dangerous=False)
            raise UnavailableError(f"authz could not decide: {exc.code().name}") from exc
        decision = reply.decision
        return AuthzDecision(
            allowed=decision.allowed, decision_id=decision.decision_id, dangerous=decision.dangerous
        )

    async def _snapshot(self, user_id: str, org_id: str) -> authz_pb2.GetSubjectSnapshotResponse:
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=user_id, org_id=org_id
        )
        try:
            reply: authz_pb2.GetSubjectSnapshotResponse = await self._stub().GetSubjectSnapshot(
                authz_pb2.GetSubjectSnapshotRequest(principal=principal),
                timeout=_TIMEOUT,
                metadata=call_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            raise UnavailableError(f"authz could not answer: {exc.code().name}") from exc
        return reply

    async def teams_of(self, user_id: str, org_id: str) -> frozenset[str]:
        return frozenset((await self._snapshot(user_id, org_id)).team_ids)

    async def grants_of(self, user_id: str, org_id: str) -> frozenset[tuple[str, str]]:
        reply = await self._snapshot(user_id, org_id)
        return frozenset(
            (grant.permission.permission, _SCOPE_NAMES[grant.permission.scope])
            for grant in reply.grants
            if grant.permission.scope in _SCOPE_NAMES
        )

    async def dangerous_patterns(self, org_id: str) -> frozenset[str]:
        try:
            reply: authz_pb2.GetDangerousActionsResponse = await self._stub().GetDangerousActions(
                authz_pb2.GetDangerousActionsRequest(org_id=org_id),
                timeout=_TIMEOUT,
                metadata=call_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            raise UnavailableError(f"authz could not answer: {exc.code().name}") from exc
        return frozenset(reply.default_permissions) | frozenset(reply.org_permissions)

    async def close(self) -> None:
        """Close the channel (idempotent)."""
        await self._channel.close()
