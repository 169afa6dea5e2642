"""Account RPCs: SignUp, VerifyEmail, RequestPasswordReset, ResetPassword, ChangePassword."""

from __future__ import annotations

from helios.identity.rpc.context import Context
from helios.identity.rpc.convert import user_to_proto
from helios.identity.service.bundle import IdentityServices
from helios.kernel.context import current_call
from helios.proto.identity.v1 import identity_pb2

__all__ = ["AccountHandlers"]


class AccountHandlers:
    """Thin handlers over AccountService."""

    _services: IdentityServices

    async def SignUp(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.SignUpRequest, context: Context
    ) -> identity_pb2.SignUpResponse:
        user = await self._services.accounts.sign_up(
            request.email, request.password, request.display_name, current_call(), request
        )
        return identity_pb2.SignUpResponse(user=user_to_proto(user))

    async def VerifyEmail(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.VerifyEmailRequest, context: Context
    ) -> identity_pb2.VerifyEmailResponse:
        user = await self._services.accounts.verify_email(request.token, current_call(), request)
        return identity_pb2.VerifyEmailResponse(user=user_to_proto(user))

    async def RequestPasswordReset(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RequestPasswordResetRequest, context: Context
    ) -> identity_pb2.RequestPasswordResetResponse:
        await self._services.accounts.request_password_reset(request.email, current_call(), request)
        return identity_pb2.RequestPasswordResetResponse()

    async def ResetPassword(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ResetPasswordRequest, context: Context
    ) -> identity_pb2.ResetPasswordResponse:
        await self._services.accounts.reset_password(
            request.token, request.new_password, current_call(), request
        )
        return identity_pb2.ResetPasswordResponse()

    async def ChangePassword(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ChangePasswordRequest, context: Context
    ) -> identity_pb2.ChangePasswordResponse:
        await self._services.accounts.change_password(
            request.current_password, request.new_password, current_call(), request
        )
        return identity_pb2.ChangePasswordResponse()
