"""The OrgUserTypes port over authz's ListUserTypes / AssignUserType RPCs: on behalf of the acting
principal (a fresh assertion signed by identity, its issuer), or as the `identity` service."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import grpc

from helios.identity.ports import PrincipalSigner
from helios.kernel.clients import LazyChannel, call_metadata
from helios.kernel.errors import (
    DomainError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

if TYPE_CHECKING:
    from helios.proto.authz.v1.authz_pb2_grpc import AuthzServiceAsyncStub

__all__ = ["GrpcUserTypes"]

_TIMEOUT = 5.0
_PAGE = 100


def _refusal(exc: grpc.aio.AioRpcError) -> DomainError:
    """Authz's refusals as identity's errors; anything else means authz could not answer."""
    details = exc.details() or ""
    if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDeniedError(f"authz refused the user type change: {details}")
    if exc.code() == grpc.StatusCode.NOT_FOUND:
        return NotFoundError(f"authz: {details}", field="user_type")
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgumentError(f"authz: {details}", field="user_type")
    return UnavailableError(f"authz could not answer: {exc.code().name}")


class GrpcUserTypes:
    """Asks authz (fully consistent reads: a user type created a moment ago is found)."""

    def __init__(self, target: str, certs: CertFiles, signer: PrincipalSigner) -> None:
        self._channel = LazyChannel(target, certs)
        self._signer = signer

    def _stub(self) -> AuthzServiceAsyncStub:
        return authz_pb2_grpc.AuthzServiceStub(self._channel.get())

    def _metadata(
        self, acting: principal_pb2.Principal | None
    ) -> tuple[tuple[str, str | bytes], ...]:
        return call_metadata(assertion=self._signer.sign(acting) if acting else None)

    async def find(
        self, org_id: uuid.UUID, name: str, acting: principal_pb2.Principal | None
    ) -> str | None:
        page_token = ""
        while True:
            request = authz_pb2.ListUserTypesRequest(
                org_id=str(org_id),
                page_size=_PAGE,
                page_token=page_token,
                consistency=authz_pb2.Consistency(fully_consistent=True),
            )
            try:
                reply = await self._stub().ListUserTypes(
                    request, timeout=_TIMEOUT, metadata=self._metadata(acting)
                )
            except grpc.aio.AioRpcError as exc:
                raise _refusal(exc) from exc
            for user_type in reply.user_types:
                if user_type.name == name:
                    return user_type.user_type_id
            if not reply.next_page_token:
                return None
            page_token = reply.next_page_token

    async def assign(
        self,
        org_id: uuid.UUID,
        user_id: uuid.UUID,
        user_type_id: str,
        acting: principal_pb2.Principal | None,
    ) -> None:
        request = authz_pb2.AssignUserTypeRequest(
            org_id=str(org_id), user_id=str(user_id), user_type_id=user_type_id
        )
        try:
            await self._stub().AssignUserType(
                request, timeout=_TIMEOUT, metadata=self._metadata(acting)
            )
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc) from exc
