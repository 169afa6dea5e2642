"""The reference push device (A3): key handling and the signed requests it builds."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from helios.proto.identity.v1 import identity_pb2
from helios.push_device import Device, NotRegisteredError, list_message, respond_message

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)


def test_a3_registration_carries_the_raw_public_key() -> None:
    """A3: the device registers its raw 32-byte public key and keeps the id it is given."""
    device = Device.generate()
    request = device.registration("Ada's phone")
    assert request.name == "Ada's phone"
    assert request.public_key == device.public_key
    assert len(device.public_key) == 32
    device.registered(
        identity_pb2.RegisterPushDeviceResponse(device=identity_pb2.PushDevice(device_id="d-1"))
    )
    assert device.device_id == "d-1"


def test_a3_restored_device_signs_like_the_original() -> None:
    """A3: a device restored from its stored private key has the same public key."""
    device = Device.generate()
    restored = Device.restore(device.private_bytes(), "d-2")
    assert restored.public_key == device.public_key
    assert restored.device_id == "d-2"


def test_a3_answer_is_signed_over_challenge_nonce_and_answer() -> None:
    """A3: the answer's signature verifies over the protocol's respond message only."""
    device = Device.restore(Device.generate().private_bytes(), str(uuid.uuid4()))
    challenge = identity_pb2.PushChallenge(
        push_challenge_id=str(uuid.uuid4()), nonce=bytes(range(32))
    )
    request = device.answer(challenge, approve=False)
    assert request.device_id == device.device_id
    assert request.push_challenge_id == challenge.push_challenge_id
    assert request.approve is False
    key = Ed25519PublicKey.from_public_bytes(device.public_key)
    key.verify(
        request.signature, respond_message(challenge.push_challenge_id, challenge.nonce, False)
    )


def test_a3_listing_is_signed_at_the_given_time() -> None:
    """A3: the listing request carries its time and a signature over the device id and it."""
    device = Device.restore(Device.generate().private_bytes(), str(uuid.uuid4()))
    request = device.listing(NOW)
    assert request.signed_at.ToDatetime(dt.UTC) == NOW
    key = Ed25519PublicKey.from_public_bytes(device.public_key)
    key.verify(
        request.signature,
        list_message(device.device_id, request.signed_at.seconds, request.signed_at.nanos),
    )


def test_a3_unregistered_device_cannot_sign_requests() -> None:
    """A3: listing or answering needs the id registration gave."""
    device = Device.generate()
    with pytest.raises(NotRegisteredError):
        device.listing(NOW)
    with pytest.raises(NotRegisteredError):
        device.answer(identity_pb2.PushChallenge(push_challenge_id=str(uuid.uuid4())), True)
