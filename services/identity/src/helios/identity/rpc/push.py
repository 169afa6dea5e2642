"""Push 2FA RPCs (A3): RegisterPushDevice, RemovePushDevice, CreatePushChallenge,
ListDevicePushChallenges, RespondPushChallenge, WatchPushChallenge; and their conversions."""

from __future__ import annotations

from collections.abc import AsyncIterator

from helios.identity.domain.push import PushChallenge, PushDevice, PushState
from helios.identity.rpc.context import Context
from helios.identity.service.bundle import IdentityServices
from helios.kernel.context import current_call
from helios.proto.identity.v1 import identity_pb2

__all__ = ["PushHandlers", "push_challenge_to_proto", "push_device_to_proto"]

_STATE_TO_PROTO = {
    PushState.PENDING: identity_pb2.PUSH_CHALLENGE_STATE_PENDING,
    PushState.APPROVED: identity_pb2.PUSH_CHALLENGE_STATE_APPROVED,
    PushState.DENIED: identity_pb2.PUSH_CHALLENGE_STATE_DENIED,
    PushState.EXPIRED: identity_pb2.PUSH_CHALLENGE_STATE_EXPIRED,
}


def push_device_to_proto(device: PushDevice) -> identity_pb2.PushDevice:
    """A device without its public key."""
    message = identity_pb2.PushDevice(device_id=str(device.id), name=device.name)
    message.created_at.FromDatetime(device.created_at)
    if device.last_used_at is not None:
        message.last_used_at.FromDatetime(device.last_used_at)
    return message


def push_challenge_to_proto(challenge: PushChallenge) -> identity_pb2.PushChallenge:
    """A push challenge as a device or the signing-in browser sees it."""
    message = identity_pb2.PushChallenge(
        push_challenge_id=str(challenge.id),
        nonce=challenge.nonce,
        state=_STATE_TO_PROTO[challenge.state],
        ip=challenge.ip,
        user_agent=challenge.user_agent,
        city=challenge.city,
        country=challenge.country,
    )
    message.expires_at.FromDatetime(challenge.expires_at)
    return message


class PushHandlers:
    """Thin handlers over PushService."""

    _services: IdentityServices

    async def RegisterPushDevice(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RegisterPushDeviceRequest, context: Context
    ) -> identity_pb2.RegisterPushDeviceResponse:
        device = await self._services.push.register_device(
            request.name, request.public_key, current_call(), request
        )
        return identity_pb2.RegisterPushDeviceResponse(device=push_device_to_proto(device))

    async def RemovePushDevice(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RemovePushDeviceRequest, context: Context
    ) -> identity_pb2.RemovePushDeviceResponse:
        await self._services.push.remove_device(request.device_id, current_call(), request)
        return identity_pb2.RemovePushDeviceResponse()

    async def CreatePushChallenge(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.CreatePushChallengeRequest, context: Context
    ) -> identity_pb2.CreatePushChallengeResponse:
        challenge = await self._services.push.create_challenge(
            request.challenge_token, current_call(), request
        )
        return identity_pb2.CreatePushChallengeResponse(
            push_challenge=push_challenge_to_proto(challenge)
        )

    async def ListDevicePushChallenges(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ListDevicePushChallengesRequest, context: Context
    ) -> identity_pb2.ListDevicePushChallengesResponse:
        challenges = await self._services.push.list_for_device(
            request.device_id,
            request.signed_at.seconds,
            request.signed_at.nanos,
            request.signature,
            current_call(),
            request,
        )
        return identity_pb2.ListDevicePushChallengesResponse(
            push_challenges=[push_challenge_to_proto(c) for c in challenges]
        )

    async def RespondPushChallenge(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RespondPushChallengeRequest, context: Context
    ) -> identity_pb2.RespondPushChallengeResponse:
        challenge = await self._services.push.respond(
            request.push_challenge_id,
            request.device_id,
            request.approve,
            request.signature,
            current_call(),
            request,
        )
        return identity_pb2.RespondPushChallengeResponse(
            push_challenge=push_challenge_to_proto(challenge)
        )

    async def WatchPushChallenge(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.WatchPushChallengeRequest, context: Context
    ) -> AsyncIterator[identity_pb2.WatchPushChallengeResponse]:
        states = self._services.push.watch(
            request.push_challenge_id, request.challenge_token, current_call()
        )
        async for challenge in states:
            yield identity_pb2.WatchPushChallengeResponse(
                push_challenge=push_challenge_to_proto(challenge)
            )
