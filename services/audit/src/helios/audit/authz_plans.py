"""authz's list plans for audit rows, asked over gRPC as the `audit` service identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from helios.kernel.clients import LazyChannel
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

if TYPE_CHECKING:
    from helios.proto.authz.v1.authz_pb2_grpc import AuthzServiceAsyncStub

__all__ = ["AuthzPlans"]

_TIMEOUT = 5.0


class AuthzPlans:
    """ListScopes over authz's PlanList: a caller's rows are decided by authz on every list
    (minimize_latency: authz serves it from its cache)."""

    def __init__(self, target: str, certs: CertFiles) -> None:
        self._channel = LazyChannel(target, certs)

    def _stub(self) -> AuthzServiceAsyncStub:
        return authz_pb2_grpc.AuthzServiceStub(self._channel.get())

    async def plan(
        self, principal: principal_pb2.Principal, permission: str, resource_type: str
    ) -> authz_pb2.PlanListResponse:
        reply: authz_pb2.PlanListResponse = await self._stub().PlanList(
            authz_pb2.PlanListRequest(
                principal=principal, permission=permission, resource_type=resource_type
            ),
            timeout=_TIMEOUT,
        )
        return reply

    async def close(self) -> None:
        """Close the channel (idempotent)."""
        await self._channel.close()
