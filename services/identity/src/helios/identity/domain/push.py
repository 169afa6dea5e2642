"""Push 2FA (A3): devices known by an Ed25519 public key, push challenges they approve or deny,
and the exact bytes a device signs (the wire protocol the reference client libs/push-device
implements).

Signed messages (every integer big-endian, every field fixed-length, so no two messages of
different meaning share their bytes):

- answer:  b"helios.push.v1.respond\\x00" | push challenge id (16 bytes, UUID) | nonce (32 bytes)
           | 0x01 approve / 0x00 deny
- listing: b"helios.push.v1.list\\x00" | device id (16 bytes, UUID) | signed_at seconds since the
           epoch (8 bytes, signed) | signed_at nanoseconds (4 bytes)
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from helios.kernel.errors import InvalidArgumentError

__all__ = [
    "LIST_PREFIX",
    "MAX_CLOCK_SKEW",
    "NONCE_BYTES",
    "PUBLIC_KEY_BYTES",
    "RESPOND_PREFIX",
    "SIGNATURE_BYTES",
    "PushChallenge",
    "PushDevice",
    "PushPolicy",
    "PushState",
    "list_message",
    "parse_id",
    "respond_message",
    "signature_valid",
    "signed_time",
    "validate_device_name",
    "validate_public_key",
    "validate_signature",
]

RESPOND_PREFIX = b"helios.push.v1.respond\x00"
LIST_PREFIX = b"helios.push.v1.list\x00"
NONCE_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
MAX_CLOCK_SKEW = dt.timedelta(seconds=60)
"""How far a device's signed listing time may be from the server's clock."""

_MAX_NAME = 100


class PushState(enum.StrEnum):
    """Where a push challenge stands (stored as its value); all but PENDING are final."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PushPolicy:
    """Lifetime of a push challenge (never past its sign-in challenge), how many a sign-in may
    send (against push fatigue), and how often a watch looks at the database (defaults: 2
    minutes, 5, every half second)."""

    ttl: dt.timedelta = dt.timedelta(minutes=2)
    max_per_sign_in: int = 5
    watch_poll: dt.timedelta = dt.timedelta(milliseconds=500)

    def __post_init__(self) -> None:
        if self.ttl <= dt.timedelta(0) or self.watch_poll <= dt.timedelta(0):
            raise ValueError("ttl and watch_poll must be positive")
        if self.max_per_sign_in < 1:
            raise ValueError("max_per_sign_in must be at least 1")


@dataclass(frozen=True, slots=True)
class PushDevice:
    """A phone (or other device) of a user that answers push challenges with its key."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    public_key: bytes
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PushChallenge:
    """One request to a user's devices to approve the sign-in `sign_in_challenge_id`. `ip`,
    `user_agent`, `city` and `country` describe the sign-in for the device to show;
    `device_id` is the device that answered; `consumed_at` is set when the approval opened a
    session."""

    id: uuid.UUID
    sign_in_challenge_id: uuid.UUID
    user_id: uuid.UUID
    nonce: bytes
    state: PushState
    created_at: dt.datetime
    expires_at: dt.datetime
    ip: str = ""
    user_agent: str = ""
    city: str = ""
    country: str = ""
    answered_at: dt.datetime | None = None
    device_id: uuid.UUID | None = None
    consumed_at: dt.datetime | None = None

    def state_at(self, now: dt.datetime) -> PushState:
        """The state as of `now`: a PENDING challenge past its expiry is EXPIRED."""
        if self.state is PushState.PENDING and now >= self.expires_at:
            return PushState.EXPIRED
        return self.state


def respond_message(push_challenge_id: uuid.UUID, nonce: bytes, approve: bool) -> bytes:
    """The bytes a device signs to approve or deny a push challenge."""
    return RESPOND_PREFIX + push_challenge_id.bytes + nonce + (b"\x01" if approve else b"\x00")


def list_message(device_id: uuid.UUID, seconds: int, nanos: int) -> bytes:
    """The bytes a device signs to list its pending challenges at time (`seconds`, `nanos`)."""
    return (
        LIST_PREFIX
        + device_id.bytes
        + seconds.to_bytes(8, "big", signed=True)
        + nanos.to_bytes(4, "big")
    )


def signature_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is the Ed25519 signature of `message` by `public_key`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def validate_public_key(raw: bytes) -> bytes:
    """A raw 32-byte Ed25519 public key; raises InvalidArgumentError otherwise (the bytes are
    not checked to be a curve point: a key no one can sign for only leaves that device
    unable to answer)."""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidArgumentError(
            f"public_key must be a raw {PUBLIC_KEY_BYTES}-byte Ed25519 key", field="public_key"
        )
    return raw


def validate_signature(raw: bytes) -> bytes:
    """A 64-byte Ed25519 signature (not yet verified); raises InvalidArgumentError otherwise."""
    if len(raw) != SIGNATURE_BYTES:
        raise InvalidArgumentError(
            f"signature must be a {SIGNATURE_BYTES}-byte Ed25519 signature", field="signature"
        )
    return raw


def validate_device_name(raw: str) -> str:
    """The name trimmed; raises InvalidArgumentError when empty, too long or not printable."""
    name = raw.strip()
    if not name:
        raise InvalidArgumentError("name is required", field="name")
    if len(name) > _MAX_NAME:
        raise InvalidArgumentError(f"name must have at most {_MAX_NAME} characters", field="name")
    if not name.isprintable():
        raise InvalidArgumentError("name must be printable text", field="name")
    return name


def parse_id(raw: str, field: str) -> uuid.UUID:
    """The UUID in `raw`; raises InvalidArgumentError naming `field` otherwise."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgumentError(f"{field} must be a UUID", field=field) from None


def signed_time(seconds: int, nanos: int) -> dt.datetime:
    """The UTC time a device says it signed at; raises InvalidArgumentError when it is missing
    or not a valid time."""
    if seconds == 0 and nanos == 0:
        raise InvalidArgumentError("signed_at is required", field="signed_at")
    if not 0 <= nanos < 1_000_000_000:
        raise InvalidArgumentError("signed_at is not a valid time", field="signed_at")
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=nanos // 1000)
    except (OverflowError, OSError, ValueError):
        raise InvalidArgumentError("signed_at is not a valid time", field="signed_at") from None
