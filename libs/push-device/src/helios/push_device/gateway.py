"""A device's calls as JSON through the Helios gateway (the routes the identity proto declares).

Registration is made on behalf of the signed-in user: the HTTP client then carries the user's
session cookie and CSRF header (`x-csrf-token` = the `helios_csrf` cookie, and `origin`).
Listing and answering are authenticated by the device's signatures alone."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import httpx
from google.protobuf import json_format
from google.protobuf.message import Message

from helios.proto.identity.v1 import identity_pb2
from helios.push_device.device import Device

__all__ = ["GatewayDevice", "GatewayError"]

_DEVICES = "/api/v1/identity/mfa/push-devices"
_CHALLENGES = "/api/v1/identity/mfa/push-challenges"

M = TypeVar("M", bound=Message)


class GatewayError(Exception):
    """The gateway refused a call: HTTP `status`, gRPC-style `code` (PERMISSION_DENIED, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class GatewayDevice:
    """`device`'s calls over `http` (an AsyncClient whose base_url is the gateway's origin)."""

    def __init__(self, device: Device, http: httpx.AsyncClient) -> None:
        self.device = device
        self._http = http

    async def register(self, name: str) -> identity_pb2.PushDevice:
        """Register the device for the signed-in user of the HTTP client; keeps its new id."""
        reply = await self._post(
            _DEVICES, self.device.registration(name), identity_pb2.RegisterPushDeviceResponse()
        )
        self.device.registered(reply)
        return reply.device

    async def pending(self, now: dt.datetime | None = None) -> list[identity_pb2.PushChallenge]:
        """The push challenges waiting for this device's user, newest first."""
        request = self.device.listing(now)
        reply = await self._post(
            f"{_DEVICES}/{request.device_id}/challenges:list",
            request,
            identity_pb2.ListDevicePushChallengesResponse(),
        )
        return list(reply.push_challenges)

    async def approve(self, challenge: identity_pb2.PushChallenge) -> identity_pb2.PushChallenge:
        """Approve the sign-in of `challenge`; returns it APPROVED."""
        return await self._answer(challenge, approve=True)

    async def deny(self, challenge: identity_pb2.PushChallenge) -> identity_pb2.PushChallenge:
        """Deny the sign-in of `challenge`; returns it DENIED."""
        return await self._answer(challenge, approve=False)

    async def _answer(
        self, challenge: identity_pb2.PushChallenge, *, approve: bool
    ) -> identity_pb2.PushChallenge:
        request = self.device.answer(challenge, approve)
        reply = await self._post(
            f"{_CHALLENGES}/{request.push_challenge_id}:respond",
            request,
            identity_pb2.RespondPushChallengeResponse(),
        )
        return reply.push_challenge

    async def _post(self, path: str, request: Message, reply: M) -> M:
        body = json_format.MessageToDict(request, preserving_proto_field_name=True)
        response = await self._http.post(path, json=body)
        document: Any = response.json() if response.content else {}
        if response.status_code >= 400:
            error = document.get("error", {}) if isinstance(document, dict) else {}
            raise GatewayError(
                response.status_code,
                str(error.get("code", "")),
                str(error.get("message", response.text)),
            )
        return json_format.ParseDict(document, reply, ignore_unknown_fields=True)
