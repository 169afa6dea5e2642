"""A push device: its Ed25519 key, its id once registered, and the signed requests it sends.

Pure: nothing here does I/O. The requests are the gRPC messages of helios.proto.identity.v1;
send them over gRPC, or as JSON through the gateway (see gateway.py)."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helios.proto.identity.v1 import identity_pb2
from helios.push_device.protocol import list_message, respond_message

__all__ = ["Device", "NotRegisteredError"]


class NotRegisteredError(RuntimeError):
    """The device has no id yet: register it first."""


class Device:
    """One device's key pair and server-assigned id. Keep `private_bytes()` in the platform's
    secure storage (Keychain, Android Keystore); the server only ever sees the public key."""

    def __init__(self, key: Ed25519PrivateKey, device_id: str = "") -> None:
        self._key = key
        self.device_id = device_id

    @classmethod
    def generate(cls) -> Device:
        """A new device with a fresh key, not registered yet."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def restore(cls, private_bytes: bytes, device_id: str) -> Device:
        """A registered device from its stored 32-byte private key and its id."""
        return cls(Ed25519PrivateKey.from_private_bytes(private_bytes), device_id)

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key, to store securely."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key the server verifies answers with."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def registration(self, name: str) -> identity_pb2.RegisterPushDeviceRequest:
        """RegisterPushDevice for this device, sent on behalf of its signed-in user."""
        return identity_pb2.RegisterPushDeviceRequest(name=name, public_key=self.public_key)

    def registered(self, reply: identity_pb2.RegisterPushDeviceResponse) -> None:
        """Take the id the server assigned."""
        self.device_id = reply.device.device_id

    def listing(
        self, now: dt.datetime | None = None
    ) -> identity_pb2.ListDevicePushChallengesRequest:
        """ListDevicePushChallenges signed at `now` (default: the current time)."""
        device_id = self._id()
        request = identity_pb2.ListDevicePushChallengesRequest(device_id=device_id)
        request.signed_at.FromDatetime(now or dt.datetime.now(dt.UTC))
        message = list_message(device_id, request.signed_at.seconds, request.signed_at.nanos)
        request.signature = self._key.sign(message)
        return request

    def answer(
        self, challenge: identity_pb2.PushChallenge, approve: bool
    ) -> identity_pb2.RespondPushChallengeRequest:
        """RespondPushChallenge approving (`approve=True`) or denying `challenge`. Show the
        user `challenge.ip`, `user_agent`, `city` and `country` before they choose."""
        signature = self._key.sign(
            respond_message(challenge.push_challenge_id, challenge.nonce, approve)
        )
        return identity_pb2.RespondPushChallengeRequest(
            push_challenge_id=challenge.push_challenge_id,
            device_id=self._id(),
            approve=approve,
            signature=signature,
        )

    def _id(self) -> str:
        if not self.device_id:
            raise NotRegisteredError("register the device first")
        return self.device_id
