"""The Authorizer port over authz's Check RPC, asked as the `identity` service identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.errors import UnavailableError
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

if TYPE_CHECKING:
    from helios.proto.authz.v1.authz_pb2_grpc import AuthzServiceAsyncStub

__all__ = ["GrpcAuthorizer"]

_TIMEOUT = 5.0


class GrpcAuthorizer:
    """Asks authz for every decision (minimize_latency: authz answers from its cache). An
    authz that cannot answer raises UnavailableError: never an allow without a decision."""

    def __init__(self, target: str, certs: CertFiles) -> None:
        self._target = target
        self._certs = certs
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> AuthzServiceAsyncStub:
        if self._channel is None:
            self._channel = secure_channel(self._target, self._certs)
        return authz_pb2_grpc.AuthzServiceStub(self._channel)

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
            raise UnavailableError(f"authz could not decide: {exc.code().name}") from exc
        return reply.decision.allowed

    async def close(self) -> None:
        """Close the channel (idempotent)."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
