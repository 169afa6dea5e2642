"""The versioned ciphertext format: a self-describing header plus AES-256-GCM bound to a context.

Format v1, all integers big-endian::

    offset  size  field
    0       3     magic b"HLV"
    3       1     format, 0x01
    4       1     kind: 0x01 ciphertext (Encrypt output), 0x02 data key (wrapped under a KEK)
    5       1     algorithm, 0x01 = AES-256-GCM
    6       16    key id (UUID, 16 raw bytes)
    22      4     key version, uint32, 1 .. 2**32 - 1
    26      12    nonce, random per message
    38      n+16  AES-256-GCM ciphertext of the n plaintext bytes, then the 16-byte tag

The associated data of the AEAD is the whole 38-byte header followed by the caller's context
(`header || context`; the header has a fixed size, so the split is unambiguous). Editing any header
field (kind, key id, version, nonce) or opening under another context therefore fails
authentication. The context for a stored column value comes from `context_aad`, which binds org,
table, row and column, so a value copied to another row or org does not open.

Errors never carry key or plaintext bytes: `CiphertextError` says only what is wrong with the blob.
"""

from __future__ import annotations

import enum
import os
import struct
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helios.kernel.errors import InvalidArgumentError

__all__ = [
    "HEADER_SIZE",
    "MAX_VERSION",
    "CiphertextError",
    "Header",
    "Kind",
    "context_aad",
    "open_sealed",
    "read_header",
    "seal",
]

MAGIC = b"HLV"
FORMAT_V1 = 0x01
ALGORITHM_AES_256_GCM = 0x01
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_VERSION = 2**32 - 1

# magic, format, kind, algorithm, key id, version, nonce
_HEADER = struct.Struct(f">3sBBB16sI{NONCE_SIZE}s")
HEADER_SIZE: int = _HEADER.size
_FIELD_LENGTH = struct.Struct(">I")


class CiphertextError(InvalidArgumentError):
    """A ciphertext is malformed or does not open; the message never holds key or plaintext."""

    def __init__(self, message: str, *, field: str | None = "ciphertext") -> None:
        super().__init__(message, field=field)


class Kind(enum.IntEnum):
    """What a sealed blob holds: an Encrypt output or a data key wrapped under a KEK."""

    CIPHERTEXT = 1
    DATA_KEY = 2


@dataclass(frozen=True, slots=True)
class Header:
    """The clear, authenticated header of a sealed blob: the key version that made it, its nonce."""

    kind: Kind
    key_id: uuid.UUID
    version: int
    nonce: bytes


def context_aad(org_id: str, table: str, row_id: str, column: str) -> bytes:
    """Encode where a value lives as associated data: each part as uint32 length + UTF-8 bytes.

    Length prefixes make the encoding injective: ("a", "bc") and ("ab", "c") differ.
    Raises CiphertextError if a part is not encodable as UTF-8 (a lone surrogate).
    """
    parts = (("org_id", org_id), ("table", table), ("row_id", row_id), ("column", column))
    out = bytearray()
    for name, value in parts:
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise CiphertextError(f"{name} is not valid UTF-8", field=name) from None
        out += _FIELD_LENGTH.pack(len(encoded))
        out += encoded
    return bytes(out)


def seal(
    key: bytes, kind: Kind, key_id: uuid.UUID, version: int, plaintext: bytes, context: bytes
) -> bytes:
    """Encrypt `plaintext` under `key` (32 bytes) into the v1 format, bound to `context`.

    Raises ValueError for a key that is not 32 bytes or a version outside 1 .. 2**32 - 1: those
    are programming errors, not caller input.
    """
    _check_key(key)
    if not 1 <= version <= MAX_VERSION:
        raise ValueError("key version must be in 1 .. 2**32 - 1")
    nonce = os.urandom(NONCE_SIZE)
    header = _HEADER.pack(
        MAGIC, FORMAT_V1, Kind(kind), ALGORITHM_AES_256_GCM, key_id.bytes, version, nonce
    )
    return header + AESGCM(key).encrypt(nonce, plaintext, header + context)


def read_header(blob: bytes) -> Header:
    """Parse the clear header without decrypting; CiphertextError if it is not a v1 blob.

    The header is not authenticated until `open_sealed` succeeds: use it only to find the key.
    """
    if len(blob) < HEADER_SIZE + TAG_SIZE:
        raise CiphertextError("ciphertext is too short")
    magic, fmt, kind, algorithm, key_id, version, nonce = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise CiphertextError("not a Helios ciphertext (unknown magic)")
    if fmt != FORMAT_V1:
        raise CiphertextError(f"unsupported ciphertext format {fmt}")
    try:
        parsed_kind = Kind(kind)
    except ValueError:
        raise CiphertextError(f"unknown ciphertext kind {kind}") from None
    if algorithm != ALGORITHM_AES_256_GCM:
        raise CiphertextError(f"unsupported ciphertext algorithm {algorithm}")
    if version == 0:
        raise CiphertextError("ciphertext names key version 0, which does not exist")
    return Header(kind=parsed_kind, key_id=uuid.UUID(bytes=key_id), version=version, nonce=nonce)


def open_sealed(key: bytes, blob: bytes, context: bytes) -> bytes:
    """Decrypt a v1 blob under `key` and `context`; return the plaintext.

    Raises CiphertextError on any failure (malformed, truncated, tampered, wrong key or context),
    never returning partial plaintext; ValueError for a key that is not 32 bytes.
    """
    _check_key(key)
    header = read_header(blob)
    associated = bytes(blob[:HEADER_SIZE]) + context
    try:
        return AESGCM(key).decrypt(header.nonce, bytes(blob[HEADER_SIZE:]), associated)
    except InvalidTag:
        raise CiphertextError(
            "ciphertext does not open (wrong key or context, or it was altered)"
        ) from None


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError("an AES-256-GCM key must be 32 bytes")
