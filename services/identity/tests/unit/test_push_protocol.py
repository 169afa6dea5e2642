"""Push 2FA rules (A3): the signed byte strings agree with the reference device, signatures bind
the challenge, nonce and answer, and malformed input is refused."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helios.identity.domain.push import (
    LIST_PREFIX,
    RESPOND_PREFIX,
    PushChallenge,
    PushPolicy,
    PushState,
    list_message,
    parse_id,
    respond_message,
    signature_valid,
    signed_time,
    validate_device_name,
    validate_public_key,
    validate_signature,
)
from helios.kernel.errors import InvalidArgumentError
from helios.proto.identity.v1 import identity_pb2
from helios.push_device import Device
from helios.push_device import protocol as device_protocol

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _challenge(state: PushState = PushState.PENDING) -> PushChallenge:
    return PushChallenge(
        id=uuid.uuid4(),
        sign_in_challenge_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        nonce=bytes(range(32)),
        state=state,
        created_at=NOW,
        expires_at=NOW + dt.timedelta(minutes=2),
    )


def _device() -> Device:
    device = Device.generate()
    device.device_id = str(uuid.uuid4())
    return device


def test_a3_reference_device_signs_the_bytes_the_server_verifies() -> None:
    """A3: the answer signed by the reference device verifies under the server's rules."""
    device = _device()
    challenge = _challenge()
    proto = identity_pb2.PushChallenge(push_challenge_id=str(challenge.id), nonce=challenge.nonce)
    for approve in (True, False):
        request = device.answer(proto, approve)
        message = respond_message(challenge.id, challenge.nonce, approve)
        assert signature_valid(device.public_key, request.signature, message)
        reference = device_protocol.respond_message(str(challenge.id), challenge.nonce, approve)
        assert reference == message


def test_a3_signature_binds_answer_nonce_and_challenge() -> None:
    """A3: an approval signature does not verify as a denial, for another nonce or another
    challenge, nor under another device's key."""
    device = _device()
    challenge = _challenge()
    proto = identity_pb2.PushChallenge(push_challenge_id=str(challenge.id), nonce=challenge.nonce)
    signature = device.answer(proto, approve=True).signature
    assert not signature_valid(
        device.public_key, signature, respond_message(challenge.id, challenge.nonce, False)
    )
    assert not signature_valid(
        device.public_key, signature, respond_message(challenge.id, bytes(32), True)
    )
    assert not signature_valid(
        device.public_key, signature, respond_message(uuid.uuid4(), challenge.nonce, True)
    )
    other = _device()
    assert not signature_valid(
        other.public_key, signature, respond_message(challenge.id, challenge.nonce, True)
    )


def test_a3_listing_signature_verifies_and_is_domain_separated() -> None:
    """A3: the device's listing signature verifies over (device id, signed_at) and cannot be
    used as an answer: the two messages carry different prefixes."""
    device = _device()
    request = device.listing(NOW)
    device_id = uuid.UUID(device.device_id)
    message = list_message(device_id, request.signed_at.seconds, request.signed_at.nanos)
    assert message.startswith(LIST_PREFIX)
    assert signature_valid(device.public_key, request.signature, message)
    seconds, nanos = request.signed_at.seconds, request.signed_at.nanos
    assert device_protocol.list_message(device.device_id, seconds, nanos) == message
    assert not signature_valid(
        device.public_key,
        request.signature,
        list_message(device_id, request.signed_at.seconds + 1, request.signed_at.nanos),
    )
    assert RESPOND_PREFIX != LIST_PREFIX
    assert not respond_message(device_id, bytes(32), True).startswith(LIST_PREFIX)


def test_a3_garbage_signature_or_key_does_not_verify() -> None:
    """A3: a signature of the wrong shape is refused without raising."""
    key = Ed25519PrivateKey.generate()
    public = _device().public_key
    assert not signature_valid(public, b"\x00" * 64, b"message")
    assert not signature_valid(public, key.sign(b"message")[:10], b"message")


def test_a3_pending_challenge_past_expiry_is_expired() -> None:
    """A3: a pending push challenge reads as EXPIRED from its expiry on; final states stay."""
    challenge = _challenge()
    assert challenge.state_at(NOW + dt.timedelta(minutes=1, seconds=59)) is PushState.PENDING
    assert challenge.state_at(NOW + dt.timedelta(minutes=2)) is PushState.EXPIRED
    approved = _challenge(PushState.APPROVED)
    assert approved.state_at(NOW + dt.timedelta(hours=1)) is PushState.APPROVED


@pytest.mark.parametrize("raw", [b"", b"\x01" * 31, b"\x01" * 33, b"\x01" * 64])
def test_a3_public_key_must_be_32_raw_bytes(raw: bytes) -> None:
    """A3: only a raw 32-byte Ed25519 public key is registered."""
    with pytest.raises(InvalidArgumentError) as refused:
        validate_public_key(raw)
    assert refused.value.field == "public_key"


@pytest.mark.parametrize("raw", [b"", b"\x01" * 63, b"\x01" * 65])
def test_a3_signature_must_be_64_bytes(raw: bytes) -> None:
    """A3: a signature of any other length is malformed input."""
    with pytest.raises(InvalidArgumentError) as refused:
        validate_signature(raw)
    assert refused.value.field == "signature"


@pytest.mark.parametrize("raw", ["", "   ", "x" * 101, "phone\x00"])
def test_a3_device_name_refused(raw: str) -> None:
    """A3: a device needs a short printable name."""
    with pytest.raises(InvalidArgumentError) as refused:
        validate_device_name(raw)
    assert refused.value.field == "name"


def test_a3_device_name_trimmed() -> None:
    """A3: surrounding blanks are dropped."""
    assert validate_device_name("  Ada's phone ") == "Ada's phone"


def test_a3_signed_time_parsed_and_refused() -> None:
    """A3: signed_at is required and must be a real time."""
    assert signed_time(int(NOW.timestamp()), 5_000) == NOW + dt.timedelta(microseconds=5)
    for seconds, nanos in ((0, 0), (1, 1_000_000_000), (10**15, 0)):
        with pytest.raises(InvalidArgumentError) as refused:
            signed_time(seconds, nanos)
        assert refused.value.field == "signed_at"


def test_a3_ids_must_be_uuids() -> None:
    """A3: ids that are not UUIDs are malformed input naming their field."""
    with pytest.raises(InvalidArgumentError) as refused:
        parse_id("not-a-uuid", "device_id")
    assert refused.value.field == "device_id"


def test_a3_push_policy_refuses_nonsense() -> None:
    """A3: the push settings must be positive."""
    with pytest.raises(ValueError, match="positive"):
        PushPolicy(ttl=dt.timedelta(0))
    with pytest.raises(ValueError, match="at least 1"):
        PushPolicy(max_per_sign_in=0)
