"""Streaming AEAD for attachments: AES-256-GCM segments under an HKDF-derived per-stream key.

The scheme is Tink's AES-GCM-HKDF streaming AEAD with Helios framing. All integers big-endian.

Stream header (40 bytes, stored in clear)::

    offset  size  field
    0       1     version, 0x01
    1       32    salt, random per stream
    33      7     nonce prefix, random per stream

Per-stream key: HKDF-SHA256(ikm = the 32-byte data key, salt = salt, info = b"helios-stream-v1"
|| segment size (uint32) || the caller's associated data), 32 bytes. A random salt gives every
stream its own key even under one data key; the associated data (org, attachment id) and the
segment size are bound through the key, so a stream opened under another context or another
segment size fails on its first segment.

Segment i (0-based) is AES-256-GCM of at most `segment_size` plaintext bytes with::

    nonce = nonce prefix (7) || i (uint32) || last flag (1 byte: 0x01 on the final segment)
    associated data = the stream header

Every segment but the last holds exactly `segment_size` plaintext bytes; the last holds 0 to
`segment_size` (an empty stream is one empty last segment). The index in the nonce detects
reordering, dropped or duplicated segments; the last flag detects truncation at a segment
boundary and data appended after the end; the per-stream key detects segments swapped in from
another stream. A segment is authenticated before any of its plaintext is released.

Attachment object, as stored (v1)::

    offset  size  field
    0       3     magic b"HLS"
    3       1     format, 0x01
    4       4     segment size, plaintext bytes per segment (1 .. 16 MiB)
    8       2     n, length of the wrapped data key (1 .. 1024)
    10      n     the data key wrapped by keyvault (ciphertext format, kind data key)
    10+n    40    stream header
    50+n    ...   the sealed segments, back to back (each `segment_size` + 16 bytes but the last)

Errors about stored data are CiphertextError and never carry key or plaintext bytes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from helios.keyvault.domain.ciphertext import CiphertextError

__all__ = [
    "MAX_SEGMENT_SIZE",
    "SEGMENT_SIZE",
    "STREAM_HEADER_SIZE",
    "TAG_SIZE",
    "ObjectHeader",
    "OpeningStream",
    "Rechunker",
    "SealingStream",
    "StreamOpener",
    "StreamSealer",
    "parse_object_header",
]

SEGMENT_SIZE = 1024 * 1024
MAX_SEGMENT_SIZE = 16 * 1024 * 1024
TAG_SIZE = 16
STREAM_VERSION = 0x01
SALT_SIZE = 32
NONCE_PREFIX_SIZE = 7
STREAM_HEADER_SIZE = 1 + SALT_SIZE + NONCE_PREFIX_SIZE
MAX_SEGMENTS = 2**32
KEY_SIZE = 32

OBJECT_MAGIC = b"HLS"
OBJECT_FORMAT_V1 = 0x01
MAX_WRAPPED_KEY_SIZE = 1024
# magic, format, segment size, wrapped key length
_OBJECT_PREFIX = struct.Struct(">3sBIH")
_INFO_LABEL = b"helios-stream-v1"
_SEGMENT_SIZE_FIELD = struct.Struct(">I")
_NONCE_SUFFIX = struct.Struct(">IB")
_ALTERED = "the attachment does not open: it was truncated, reordered or altered"


def _check_segment_size(segment_size: int) -> None:
    if not 1 <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment size must be 1 .. {MAX_SEGMENT_SIZE} bytes")


def _stream_key(key: bytes, salt: bytes, segment_size: int, aad: bytes) -> AESGCM:
    if len(key) != KEY_SIZE:
        raise ValueError("a stream data key must be 32 bytes")
    info = _INFO_LABEL + _SEGMENT_SIZE_FIELD.pack(segment_size) + aad
    derived = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=info).derive(key)
    return AESGCM(derived)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if not 0 <= index < MAX_SEGMENTS:
        raise CiphertextError("segment index out of range")
    return prefix + _NONCE_SUFFIX.pack(index, 1 if last else 0)


class StreamSealer:
    """Seals one stream segment by segment; `header` goes before the segments.

    Misuse (a short non-final segment, an oversized one, anything after the final one, more
    than 2**32 segments) raises ValueError: those are programming errors, not caller input.
    """

    def __init__(self, key: bytes, aad: bytes, *, segment_size: int = SEGMENT_SIZE) -> None:
        _check_segment_size(segment_size)
        salt = os.urandom(SALT_SIZE)
        self._prefix = os.urandom(NONCE_PREFIX_SIZE)
        self.header = bytes([STREAM_VERSION]) + salt + self._prefix
        self.segment_size = segment_size
        self._aead = _stream_key(key, salt, segment_size, aad)
        self._index = 0
        self._done = False

    @property
    def segments(self) -> int:
        """How many segments were sealed so far."""
        return self._index

    def seal_segment(self, chunk: bytes, last: bool) -> bytes:
        """Seal the next segment: exactly `segment_size` bytes unless `last` (0 .. segment_size)."""
        if self._done:
            raise ValueError("the stream is already finished")
        if len(chunk) > self.segment_size or (not last and len(chunk) != self.segment_size):
            raise ValueError("every segment but the last holds exactly segment_size bytes")
        if self._index >= MAX_SEGMENTS:
            raise ValueError("a stream holds at most 2**32 segments")
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, last), chunk, self.header)
        self._index += 1
        self._done = last
        return sealed


class StreamOpener:
    """Opens the segments of one stream; each `open_segment` authenticates before returning.

    Raises CiphertextError for a malformed header; ValueError for a key that is not 32 bytes or
    a segment size out of range (callers pass the size they stored).
    """

    def __init__(
        self, key: bytes, aad: bytes, header: bytes, *, segment_size: int = SEGMENT_SIZE
    ) -> None:
        _check_segment_size(segment_size)
        if len(header) != STREAM_HEADER_SIZE:
            raise CiphertextError("stream header has the wrong size")
        if header[0] != STREAM_VERSION:
            raise CiphertextError(f"unsupported stream version {header[0]}")
        self.header = bytes(header)
        self.segment_size = segment_size
        salt = self.header[1 : 1 + SALT_SIZE]
        self._prefix = self.header[1 + SALT_SIZE :]
        self._aead = _stream_key(key, salt, segment_size, aad)

    def open_segment(self, blob: bytes, index: int, last: bool) -> bytes:
        """The plaintext of segment `index` (`last`: it is the final one); CiphertextError if it
        is not that segment of this stream, unaltered."""
        size = len(blob) - TAG_SIZE
        if size < 0 or size > self.segment_size or (not last and size != self.segment_size):
            raise CiphertextError(_ALTERED)
        try:
            return self._aead.decrypt(_nonce(self._prefix, index, last), bytes(blob), self.header)
        except InvalidTag:
            raise CiphertextError(_ALTERED) from None


class Rechunker:
    """Cuts a byte stream into pieces of `size` bytes, holding back the final piece.

    `push` yields only pieces that more bytes follow, so when the stream ends `rest()` is the
    final piece (0 .. size bytes): no look-ahead read is needed to know which piece is last.
    At most `size` + one pushed chunk is held at a time.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("piece size must be positive")
        self._size = size
        self._buffer = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        """Add `data`; return every complete piece that is known not to be the final one."""
        self._buffer += data
        pieces: list[bytes] = []
        while len(self._buffer) > self._size:
            with memoryview(self._buffer) as view:
                pieces.append(bytes(view[: self._size]))
            del self._buffer[: self._size]
        return pieces

    def rest(self) -> bytes:
        """The final piece (what is held back), emptying the buffer."""
        piece = bytes(self._buffer)
        self._buffer.clear()
        return piece


class SealingStream:
    """Plaintext of any chunking in, sealed segments out (`header` first, then `update`s,
    then `finish`)."""

    def __init__(self, key: bytes, aad: bytes, *, segment_size: int = SEGMENT_SIZE) -> None:
        self._sealer = StreamSealer(key, aad, segment_size=segment_size)
        self._pieces = Rechunker(segment_size)
        self.header = self._sealer.header
        self.size = 0

    @property
    def segments(self) -> int:
        """How many segments were sealed so far."""
        return self._sealer.segments

    def update(self, data: bytes) -> list[bytes]:
        """Seal every segment of `data` that is complete and not the final one."""
        self.size += len(data)
        return [self._sealer.seal_segment(p, last=False) for p in self._pieces.push(data)]

    def finish(self) -> bytes:
        """Seal the final segment (flagged last)."""
        return self._sealer.seal_segment(self._pieces.rest(), last=True)


class OpeningStream:
    """Sealed segments of any chunking in, verified plaintext out; plaintext leaves only after
    its segment is authenticated, and `finish` refuses a stream that lacks its final segment."""

    def __init__(
        self, key: bytes, aad: bytes, header: bytes, *, segment_size: int = SEGMENT_SIZE
    ) -> None:
        self._opener = StreamOpener(key, aad, header, segment_size=segment_size)
        self._pieces = Rechunker(segment_size + TAG_SIZE)
        self._index = 0

    def update(self, data: bytes) -> list[bytes]:
        """Open every complete segment of `data` that more bytes follow (so not the final one)."""
        opened: list[bytes] = []
        for piece in self._pieces.push(data):
            opened.append(self._opener.open_segment(piece, self._index, last=False))
            self._index += 1
        return opened

    def finish(self) -> bytes:
        """Open the final segment; CiphertextError if there is none or it is not flagged last."""
        piece = self._pieces.rest()
        if len(piece) < TAG_SIZE:
            raise CiphertextError(_ALTERED)
        plaintext = self._opener.open_segment(piece, self._index, last=True)
        self._index += 1
        return plaintext


@dataclass(frozen=True, slots=True)
class ObjectHeader:
    """What precedes the segments of a stored attachment: segment size, wrapped data key, stream
    header. Not authenticated by itself: a changed field makes the key unwrap or the first
    segment fail."""

    segment_size: int
    wrapped_key: bytes
    stream_header: bytes

    def encode(self) -> bytes:
        """The stored form (see the module docstring)."""
        _check_segment_size(self.segment_size)
        if not 1 <= len(self.wrapped_key) <= MAX_WRAPPED_KEY_SIZE:
            raise ValueError("wrapped data key has the wrong size")
        if len(self.stream_header) != STREAM_HEADER_SIZE:
            raise ValueError("stream header has the wrong size")
        prefix = _OBJECT_PREFIX.pack(
            OBJECT_MAGIC, OBJECT_FORMAT_V1, self.segment_size, len(self.wrapped_key)
        )
        return prefix + self.wrapped_key + self.stream_header


def parse_object_header(buffer: bytes) -> tuple[ObjectHeader, int] | None:
    """The object header at the start of `buffer` and its length, or None while `buffer` is too
    short to hold it all; CiphertextError if it is not an attachment object."""
    if len(buffer) < _OBJECT_PREFIX.size:
        return None
    magic, fmt, segment_size, key_size = _OBJECT_PREFIX.unpack_from(buffer)
    if magic != OBJECT_MAGIC:
        raise CiphertextError("not a Helios attachment (unknown magic)")
    if fmt != OBJECT_FORMAT_V1:
        raise CiphertextError(f"unsupported attachment format {fmt}")
    if not 1 <= segment_size <= MAX_SEGMENT_SIZE:
        raise CiphertextError("attachment segment size out of range")
    if not 1 <= key_size <= MAX_WRAPPED_KEY_SIZE:
        raise CiphertextError("attachment wrapped key size out of range")
    end = _OBJECT_PREFIX.size + key_size + STREAM_HEADER_SIZE
    if len(buffer) < end:
        return None
    wrapped = bytes(buffer[_OBJECT_PREFIX.size : _OBJECT_PREFIX.size + key_size])
    stream_header = bytes(buffer[_OBJECT_PREFIX.size + key_size : end])
    return ObjectHeader(segment_size, wrapped, stream_header), end
