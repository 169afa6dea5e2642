"""The v1 ciphertext format: round trips, AAD binding, tamper and truncation detection (E4, E6)."""

from __future__ import annotations

import os
import struct
import uuid

import pytest

from helios.kernel.errors import InvalidArgumentError
from helios.keyvault.domain.ciphertext import (
    HEADER_SIZE,
    CiphertextError,
    Header,
    Kind,
    context_aad,
    open_sealed,
    read_header,
    seal,
)

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
KEY_ID = uuid.UUID("6f1c2a9e-0b7d-4e53-9a51-3c1f0e2d4b6a")
PLAINTEXT = b"4111 1111 1111 1111 -- the secret column value"
CONTEXT = context_aad("org-a", "payment_methods", "row-1", "card_number")


def _sealed(
    *, kind: Kind = Kind.CIPHERTEXT, version: int = 7, plaintext: bytes = PLAINTEXT
) -> bytes:
    return seal(KEY, kind, KEY_ID, version, plaintext, CONTEXT)


def _assert_clean(error: CiphertextError) -> None:
    """The error is an InvalidArgument for the caller and names no key or plaintext bytes."""
    assert isinstance(error, InvalidArgumentError)
    text = f"{error} {error!r} {error.message}"
    assert PLAINTEXT.decode() not in text
    assert "secret" not in text
    assert KEY.hex() not in text
    assert repr(KEY) not in text


def test_e4_round_trip() -> None:
    blob = _sealed()
    assert PLAINTEXT not in blob
    assert open_sealed(KEY, blob, CONTEXT) == PLAINTEXT


def test_e4_round_trip_data_key_and_empty_plaintext() -> None:
    data_key = os.urandom(32)
    assert open_sealed(KEY, _sealed(kind=Kind.DATA_KEY, plaintext=data_key), CONTEXT) == data_key
    assert open_sealed(KEY, _sealed(plaintext=b""), CONTEXT) == b""


def test_e4_each_seal_uses_a_fresh_nonce() -> None:
    first, second = _sealed(), _sealed()
    assert first != second
    assert read_header(first).nonce != read_header(second).nonce


def test_e6_header_says_kind_key_and_version() -> None:
    blob = _sealed(kind=Kind.DATA_KEY, version=42)
    header = read_header(blob)
    assert header == Header(kind=Kind.DATA_KEY, key_id=KEY_ID, version=42, nonce=header.nonce)
    assert len(header.nonce) == 12


def test_e6_header_layout_is_the_documented_v1_format() -> None:
    blob = _sealed(version=0x01020304)
    assert HEADER_SIZE == 38
    assert blob[0:3] == b"HLV"
    assert blob[3] == 0x01  # format
    assert blob[4] == Kind.CIPHERTEXT
    assert blob[5] == 0x01  # AES-256-GCM
    assert blob[6:22] == KEY_ID.bytes
    assert blob[22:26] == b"\x01\x02\x03\x04"
    assert blob[26:38] == read_header(blob).nonce
    assert len(blob) == HEADER_SIZE + len(PLAINTEXT) + 16


def test_e6_version_range_is_1_to_2_pow_32_minus_1() -> None:
    top = 2**32 - 1
    assert read_header(_sealed(version=top)).version == top
    assert read_header(_sealed(version=1)).version == 1
    for bad in (0, -1, 2**32):
        with pytest.raises(ValueError, match="version"):
            _sealed(version=bad)


def test_e4_key_must_be_32_bytes() -> None:
    for bad in (b"", KEY[:16], KEY + b"\x00"):
        with pytest.raises(ValueError, match="32 bytes"):
            seal(bad, Kind.CIPHERTEXT, KEY_ID, 1, PLAINTEXT, CONTEXT)
        with pytest.raises(ValueError, match="32 bytes"):
            open_sealed(bad, _sealed(), CONTEXT)


def test_e4_wrong_aad_fails() -> None:
    blob = _sealed()
    for context in (
        b"",
        CONTEXT + b"\x00",
        context_aad("org-a", "payment_methods", "row-2", "card_number"),
        context_aad("org-a", "payment_methods", "row-1", "iban"),
        context_aad("org-a", "invoices", "row-1", "card_number"),
    ):
        with pytest.raises(CiphertextError) as caught:
            open_sealed(KEY, blob, context)
        _assert_clean(caught.value)


def test_e4_another_orgs_context_fails() -> None:
    blob = _sealed()
    other_org = context_aad("org-b", "payment_methods", "row-1", "card_number")
    with pytest.raises(CiphertextError) as caught:
        open_sealed(KEY, blob, other_org)
    _assert_clean(caught.value)


def test_e4_wrong_key_fails() -> None:
    with pytest.raises(CiphertextError) as caught:
        open_sealed(OTHER_KEY, _sealed(), CONTEXT)
    _assert_clean(caught.value)


def test_e4_flipped_bit_anywhere_fails() -> None:
    blob = _sealed()
    for position in range(len(blob)):
        for mask in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[position] ^= mask
            with pytest.raises(CiphertextError) as caught:
                open_sealed(KEY, bytes(tampered), CONTEXT)
            _assert_clean(caught.value)


def test_e4_truncated_at_every_length_fails() -> None:
    blob = _sealed()
    for length in range(len(blob)):
        with pytest.raises(CiphertextError) as caught:
            open_sealed(KEY, blob[:length], CONTEXT)
        _assert_clean(caught.value)


def test_e4_extended_ciphertext_fails() -> None:
    with pytest.raises(CiphertextError):
        open_sealed(KEY, _sealed() + b"\x00", CONTEXT)


def test_e4_empty_blob_fails() -> None:
    with pytest.raises(CiphertextError, match="too short") as caught:
        open_sealed(KEY, b"", CONTEXT)
    assert caught.value.field == "ciphertext"
    with pytest.raises(CiphertextError, match="too short"):
        read_header(b"")


def _edit(blob: bytes, offset: int, value: bytes) -> bytes:
    return blob[:offset] + value + blob[offset + len(value) :]


def test_e6_editing_the_version_fails() -> None:
    edited = _edit(_sealed(version=7), 22, struct.pack(">I", 6))
    assert read_header(edited).version == 6  # still parses ...
    with pytest.raises(CiphertextError):  # ... but is not authentic
        open_sealed(KEY, edited, CONTEXT)


def test_e6_editing_the_key_id_fails() -> None:
    other_id = uuid.uuid4()
    edited = _edit(_sealed(), 6, other_id.bytes)
    assert read_header(edited).key_id == other_id
    with pytest.raises(CiphertextError):
        open_sealed(KEY, edited, CONTEXT)


def test_e6_editing_the_kind_fails() -> None:
    edited = _edit(_sealed(kind=Kind.DATA_KEY), 4, bytes([Kind.CIPHERTEXT]))
    assert read_header(edited).kind is Kind.CIPHERTEXT
    with pytest.raises(CiphertextError):
        open_sealed(KEY, edited, CONTEXT)


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, b"XLV", "unknown magic"),
        (3, b"\x02", "format"),
        (3, b"\x00", "format"),
        (4, b"\x03", "kind"),
        (4, b"\x00", "kind"),
        (5, b"\x02", "algorithm"),
        (22, b"\x00\x00\x00\x00", "version 0"),
    ],
)
def test_e6_unknown_header_values_refused(offset: int, value: bytes, message: str) -> None:
    edited = _edit(_sealed(), offset, value)
    with pytest.raises(CiphertextError, match=message) as caught:
        read_header(edited)
    _assert_clean(caught.value)
    with pytest.raises(CiphertextError, match=message):
        open_sealed(KEY, edited, CONTEXT)


def test_e4_context_aad_is_unambiguous() -> None:
    assert context_aad("a", "bc", "r", "c") != context_aad("ab", "c", "r", "c")
    assert context_aad("o", "t", "a", "bc") != context_aad("o", "t", "ab", "c")
    assert context_aad("o", "", "", "x") != context_aad("o", "x", "", "")
    assert context_aad("o", "t", "r", "c") == context_aad("o", "t", "r", "c")
    assert context_aad("", "", "", "") == b"\x00\x00\x00\x00" * 4


def test_e4_context_aad_is_length_prefixed_utf8() -> None:
    assert context_aad("ä", "t", "r", "c") == (
        b"\x00\x00\x00\x02\xc3\xa4" + b"\x00\x00\x00\x01t" + b"\x00\x00\x00\x01r\x00\x00\x00\x01c"
    )


def test_e4_context_aad_refuses_unencodable_text() -> None:
    with pytest.raises(CiphertextError) as caught:
        context_aad("org", "t", "\ud800", "c")
    assert caught.value.field == "row_id"
