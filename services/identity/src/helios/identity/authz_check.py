"""The Authorizer port over authz's Check and GetSubjectSnapshot RPCs, asked as the `identity`
service identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from helios.identity.ports import SubjectRights
from helios.kernel.clients import LazyChannel, call_metadata
from helios.kernel.errors import UnavailableError
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

if TYPE_CHECKING:
    from helios.proto.authz.v1.authz_pb2_grpc import AuthzServiceAsyncStub

__all__ = ["GrpcAuthorizer"]

_TIMEOUT = 5.0
# authz refusing the question itself: an answer (deny), not an outage.
_NO_DECISION_POSSIBLE = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED}
)


class GrpcAuthorizer:
    """Asks authz for every decision (minimize_latency: authz answers from its cache). A question
    authz refuses (a principal in no org, an unknown permission) is a deny; an authz that cannot
    answer raises UnavailableError: never an allow without a decision."""

    def __init__(self, target: str, certs: CertFiles) -> None:
        self._channel = LazyChannel(target, certs)

    def _stub(self) -> AuthzServiceAsyncStub:
        return authz_pb2_grpc.AuthzServiceStub(self._channel.get())

    async def allowed(
        self,
        principal: principal_pb2.Principal,
        permission: str,
        *,
        org_id: str = "",
        owner_id: str = "",
    ) -> bool:
        resource_type = permission.rsplit(".", 1)[0]
        request = authz_pb2.CheckRequest(
            principal=principal,
            permission=permission,
            resource=authz_pb2.Resource(type=resource_type, org_id=org_id, owner_id=owner_id),
        )
        try:
            reply: authz_pb2.CheckResponse = await self._stub().Check(
                request, timeout=_TIMEOUT, metadata=call_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NO_DECISION_POSSIBLE:
                return False  # e.g. a principal in no org: nothing can be granted to it
            raise UnavailableError(f"authz could not decide: {exc.code().name}") from exc
        return reply.decision.allowed

    async def rights_of(self, user_id: str, org_id: str) -> SubjectRights:
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=user_id, org_id=org_id
        )
        request = authz_pb2.GetSubjectSnapshotRequest(
            principal=principal,
            consistency=authz_pb2.Consistency(fully_consistent=True),
        )
        try:
            reply: authz_pb2.GetSubjectSnapshotResponse = await self._stub().GetSubjectSnapshot(
                request, timeout=_TIMEOUT, metadata=call_metadata()
            )
        except grpc.aio.AioRpcError as exc:
            raise UnavailableError(f"authz could not answer: {exc.code().name}") from exc
        return SubjectRights(
            grants=frozenset(
                (grant.permission.permission, int(grant.permission.scope)) for grant in reply.grants
            ),
            platform_root=reply.platform_root,
        )

    async def close(self) -> None:
        """Close the channel (idempotent)."""
        await self._channel.close()
