"""IdentityService over gRPC: proto -> use case -> proto. RPCs not listed answer UNIMPLEMENTED."""

from __future__ import annotations

from typing import Any

import grpc

from helios.identity.rpc.convert import session_to_proto, user_to_proto
from helios.identity.service import IdentityService
from helios.kernel.context import current_call
from helios.proto.identity.v1 import identity_pb2, identity_pb2_grpc

__all__ = ["IdentityServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    """Thin handlers; errors are mapped to status codes by the kernel interceptor."""

    def __init__(self, service: IdentityService) -> None:
        self._service = service

    async def SignUp(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.SignUpRequest, context: Context
    ) -> identity_pb2.SignUpResponse:
        user = await self._service.sign_up(
            request.email, request.password, request.display_name, current_call(), request
        )
        return identity_pb2.SignUpResponse(user=user_to_proto(user))

    async def SignIn(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.SignInRequest, context: Context
    ) -> identity_pb2.SignInResponse:
        signed_in = await self._service.sign_in(
            request.email, request.password, current_call(), request
        )
        return identity_pb2.SignInResponse(
            session_token=signed_in.token,
            session=session_to_proto(signed_in.session),
            user=user_to_proto(signed_in.user),
        )

    async def GetCurrentUser(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.GetCurrentUserRequest, context: Context
    ) -> identity_pb2.GetCurrentUserResponse:
        user, session = await self._service.current_user(current_call())
        return identity_pb2.GetCurrentUserResponse(
            user=user_to_proto(user), session=session_to_proto(session)
        )

    async def SignOut(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.SignOutRequest, context: Context
    ) -> identity_pb2.SignOutResponse:
        await self._service.sign_out(current_call(), request)
        return identity_pb2.SignOutResponse()

    async def ResolveSession(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ResolveSessionRequest, context: Context
    ) -> identity_pb2.ResolveSessionResponse:
        resolved = await self._service.resolve_session(request.session_token, current_call())
        return identity_pb2.ResolveSessionResponse(
            principal=resolved.principal,
            user=user_to_proto(resolved.user),
            session=session_to_proto(resolved.session),
            assertion=resolved.assertion,
        )

    async def VerifyEmail(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.VerifyEmailRequest, context: Context
    ) -> identity_pb2.VerifyEmailResponse:
        user = await self._service.verify_email(request.token, current_call(), request)
        return identity_pb2.VerifyEmailResponse(user=user_to_proto(user))

    async def RequestPasswordReset(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RequestPasswordResetRequest, context: Context
    ) -> identity_pb2.RequestPasswordResetResponse:
        await self._service.request_password_reset(request.email, current_call(), request)
        return identity_pb2.RequestPasswordResetResponse()

    async def ResetPassword(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ResetPasswordRequest, context: Context
    ) -> identity_pb2.ResetPasswordResponse:
        await self._service.reset_password(
            request.token, request.new_password, current_call(), request
        )
        return identity_pb2.ResetPasswordResponse()

    async def ChangePassword(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ChangePasswordRequest, context: Context
    ) -> identity_pb2.ChangePasswordResponse:
        await self._service.change_password(
            request.current_password, request.new_password, current_call(), request
        )
        return identity_pb2.ChangePasswordResponse()
