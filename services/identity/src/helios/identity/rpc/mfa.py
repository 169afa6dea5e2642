"""Second-factor RPCs (A3, A9, I3): EnrollTotp, ConfirmTotp, RegenerateBackupCodes, StepUp,
GetMfaStatus, SendEmailOtp, CompleteSecondFactor, ListRememberedDevices, RevokeRememberedDevice;
and their conversions."""

from __future__ import annotations

from helios.identity.domain.model import SignInMethod
from helios.identity.domain.remembered_device import RememberedDevice
from helios.identity.rpc.context import Context
from helios.identity.rpc.convert import METHOD_TO_PROTO, session_to_proto, user_to_proto
from helios.identity.rpc.push import push_device_to_proto
from helios.identity.service.bundle import IdentityServices
from helios.kernel.context import current_call
from helios.kernel.errors import InvalidArgumentError
from helios.proto.identity.v1 import identity_pb2

__all__ = ["MfaHandlers", "method_from_proto", "remembered_device_to_proto"]

_PROTO_TO_METHOD = {value: method for method, value in METHOD_TO_PROTO.items()}


def method_from_proto(value: identity_pb2.SecondFactorMethod.ValueType) -> SignInMethod:
    """The second factor a request names; InvalidArgumentError for UNSPECIFIED or unknown."""
    method = _PROTO_TO_METHOD.get(value)
    if method is None:
        raise InvalidArgumentError("choose a second-factor method", field="method")
    return method


def remembered_device_to_proto(device: RememberedDevice) -> identity_pb2.RememberedDevice:
    """A device without its token hash; `ip` is where it was last used (else remembered)."""
    message = identity_pb2.RememberedDevice(
        device_id=str(device.id),
        user_agent=device.user_agent,
        ip=device.last_used_ip or device.ip,
    )
    message.created_at.FromDatetime(device.created_at)
    message.expires_at.FromDatetime(device.expires_at)
    if device.last_used_at is not None:
        message.last_used_at.FromDatetime(device.last_used_at)
    return message


class MfaHandlers:
    """Thin handlers over MfaService, SecondFactorService and RememberedDevices."""

    _services: IdentityServices

    async def EnrollTotp(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.EnrollTotpRequest, context: Context
    ) -> identity_pb2.EnrollTotpResponse:
        enrollment = await self._services.mfa.enroll_totp(current_call(), request)
        return identity_pb2.EnrollTotpResponse(
            otpauth_uri=enrollment.otpauth_uri, qr_svg=enrollment.qr_svg
        )

    async def ConfirmTotp(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ConfirmTotpRequest, context: Context
    ) -> identity_pb2.ConfirmTotpResponse:
        codes = await self._services.mfa.confirm_totp(request.code, current_call(), request)
        return identity_pb2.ConfirmTotpResponse(backup_codes=codes)

    async def RegenerateBackupCodes(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RegenerateBackupCodesRequest, context: Context
    ) -> identity_pb2.RegenerateBackupCodesResponse:
        codes = await self._services.mfa.regenerate_backup_codes(current_call(), request)
        return identity_pb2.RegenerateBackupCodesResponse(backup_codes=codes)

    async def StepUp(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.StepUpRequest, context: Context
    ) -> identity_pb2.StepUpResponse:
        token, expires_at = await self._services.step_up.step_up(
            request.code,
            request.purpose,
            request.binding,
            request.org_id,
            current_call(),
            request,
        )
        reply = identity_pb2.StepUpResponse(step_up_token=token)
        reply.expires_at.FromDatetime(expires_at)
        return reply

    async def GetMfaStatus(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.GetMfaStatusRequest, context: Context
    ) -> identity_pb2.GetMfaStatusResponse:
        status = await self._services.mfa.status(current_call())
        return identity_pb2.GetMfaStatusResponse(
            totp_enrolled=status.totp_enrolled,
            backup_codes_remaining=status.backup_codes_remaining,
            push_devices=[push_device_to_proto(device) for device in status.push_devices],
        )

    async def SendEmailOtp(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.SendEmailOtpRequest, context: Context
    ) -> identity_pb2.SendEmailOtpResponse:
        expires_at = await self._services.second_factor.send_email_otp(
            request.challenge_token, current_call(), request
        )
        reply = identity_pb2.SendEmailOtpResponse()
        reply.expires_at.FromDatetime(expires_at)
        return reply

    async def CompleteSecondFactor(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.CompleteSecondFactorRequest, context: Context
    ) -> identity_pb2.CompleteSecondFactorResponse:
        completed = await self._services.second_factor.complete(
            request.challenge_token,
            method_from_proto(request.method),
            request.code,
            request.remember_device,
            current_call(),
            request,
        )
        signed_in = completed.signed_in
        return identity_pb2.CompleteSecondFactorResponse(
            session_token=signed_in.token,
            session=session_to_proto(signed_in.session),
            user=user_to_proto(signed_in.user),
            device_token=completed.device_token,
        )

    async def ListRememberedDevices(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ListRememberedDevicesRequest, context: Context
    ) -> identity_pb2.ListRememberedDevicesResponse:
        devices = await self._services.devices.list_own(current_call())
        return identity_pb2.ListRememberedDevicesResponse(
            devices=[remembered_device_to_proto(device) for device in devices]
        )

    async def RevokeRememberedDevice(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RevokeRememberedDeviceRequest, context: Context
    ) -> identity_pb2.RevokeRememberedDeviceResponse:
        await self._services.devices.revoke_own(request.device_id, current_call(), request)
        return identity_pb2.RevokeRememberedDeviceResponse()
