"""The bytes a push device signs (Helios push 2FA protocol, version 1).

Every signature is Ed25519 (RFC 8032) by the device's key over one of these messages; every
integer is big-endian and every field has a fixed length, so no two messages of different
meaning share their bytes, and the prefix keeps each kind of message apart from the other and
from any other use of the key:

- answer to a push challenge (RespondPushChallenge):
  b"helios.push.v1.respond\\x00" | push challenge id (16 bytes, the UUID) | nonce (32 bytes, as
  the server sent it) | 0x01 to approve, 0x00 to deny
- listing the device's pending challenges (ListDevicePushChallenges):
  b"helios.push.v1.list\\x00" | device id (16 bytes, the UUID) | signed_at seconds since the Unix
  epoch (8 bytes, signed) | signed_at nanoseconds (4 bytes); the server refuses a signed_at
  more than 60 seconds away from its clock.
"""

from __future__ import annotations

import uuid

__all__ = ["LIST_PREFIX", "RESPOND_PREFIX", "list_message", "respond_message"]

RESPOND_PREFIX = b"helios.push.v1.respond\x00"
LIST_PREFIX = b"helios.push.v1.list\x00"


def respond_message(push_challenge_id: str, nonce: bytes, approve: bool) -> bytes:
    """The message signed to approve (`approve=True`) or deny a push challenge."""
    return (
        RESPOND_PREFIX
        + uuid.UUID(push_challenge_id).bytes
        + nonce
        + (b"\x01" if approve else b"\x00")
    )


def list_message(device_id: str, seconds: int, nanos: int) -> bytes:
    """The message signed to list the device's pending challenges at (`seconds`, `nanos`)."""
    return (
        LIST_PREFIX
        + uuid.UUID(device_id).bytes
        + seconds.to_bytes(8, "big", signed=True)
        + nanos.to_bytes(4, "big")
    )
