"""Streaming AEAD of attachments: round trips, and truncation, reordering, swaps and tampering
refused (E5)."""

from __future__ import annotations

import os

import pytest

from helios.keyvault.domain.ciphertext import CiphertextError, context_aad
from helios.keyvault.domain.streaming import (
    STREAM_HEADER_SIZE,
    TAG_SIZE,
    ObjectHeader,
    OpeningStream,
    Rechunker,
    SealingStream,
    StreamOpener,
    StreamSealer,
    parse_object_header,
)

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
AAD = context_aad("org-a", "attachment", "report.pdf", "content")
SIZE = 64


def _seal(plaintext: bytes, *, key: bytes = KEY, chunk: int = 7) -> tuple[bytes, list[bytes]]:
    """Seal `plaintext` fed in `chunk`-byte pieces; returns the header and the segments."""
    sealing = SealingStream(key, AAD, segment_size=SIZE)
    segments: list[bytes] = []
    for start in range(0, len(plaintext), chunk):
        segments += sealing.update(plaintext[start : start + chunk])
    segments.append(sealing.finish())
    assert sealing.size == len(plaintext)
    assert sealing.segments == len(segments)
    return sealing.header, segments


def _open(
    header: bytes, segments: list[bytes], *, key: bytes = KEY, aad: bytes = AAD, chunk: int = 13
) -> bytes:
    """Open the concatenated segments fed in `chunk`-byte pieces (any framing must work)."""
    opening = OpeningStream(key, aad, header, segment_size=SIZE)
    data = b"".join(segments)
    out = bytearray()
    for start in range(0, len(data), chunk):
        for plaintext in opening.update(data[start : start + chunk]):
            out += plaintext
    out += opening.finish()
    return bytes(out)


@pytest.mark.parametrize(
    ("length", "expected_segments"),
    [(0, 1), (1, 1), (SIZE - 1, 1), (SIZE, 1), (SIZE + 1, 2), (10 * SIZE, 10), (10 * SIZE + 5, 11)],
)
def test_e5_round_trip_of_any_length(length: int, expected_segments: int) -> None:
    """Empty, one byte, exactly one segment, one more than a segment, many segments: the
    plaintext comes back whole, in as many segments as the size says, and is not in the output."""
    plaintext = os.urandom(length)
    header, segments = _seal(plaintext)
    assert len(header) == STREAM_HEADER_SIZE
    assert len(segments) == expected_segments
    assert all(len(s) == SIZE + TAG_SIZE for s in segments[:-1])
    assert _open(header, segments) == plaintext
    if length >= 16:
        assert plaintext[:16] not in b"".join(segments)


@pytest.mark.parametrize("chunk", [1, SIZE, 3 * SIZE + 1, 10_000])
def test_e5_framing_of_the_input_does_not_change_the_result(chunk: int) -> None:
    """Fed in pieces of any size, the plaintext opens to the same bytes."""
    plaintext = os.urandom(5 * SIZE + 3)
    header, segments = _seal(plaintext, chunk=chunk)
    assert _open(header, segments, chunk=chunk) == plaintext


def test_e5_two_streams_of_the_same_plaintext_differ() -> None:
    """A random salt and nonce prefix per stream: equal plaintexts seal differently."""
    plaintext = os.urandom(3 * SIZE)
    first_header, first = _seal(plaintext)
    second_header, second = _seal(plaintext)
    assert first_header != second_header
    assert not set(first) & set(second)


def test_e5_truncation_at_a_segment_boundary_is_refused() -> None:
    """Dropping the final segment leaves a stream whose new end is not flagged last."""
    header, segments = _seal(os.urandom(4 * SIZE + 9))
    with pytest.raises(CiphertextError):
        _open(header, segments[:-1])


def test_e5_truncation_inside_a_segment_is_refused() -> None:
    """Cutting bytes off the end breaks the final segment's tag."""
    header, segments = _seal(os.urandom(4 * SIZE + 9))
    with pytest.raises(CiphertextError):
        _open(header, [*segments[:-1], segments[-1][:-1]])


def test_e5_stream_with_no_segment_is_refused() -> None:
    """An object holding a header but no segment at all is not an empty attachment."""
    header, _ = _seal(b"")
    with pytest.raises(CiphertextError):
        _open(header, [])


def test_e5_reordered_segments_are_refused() -> None:
    """Swapping two segments of one stream: the index in the nonce no longer matches."""
    header, segments = _seal(os.urandom(4 * SIZE))
    swapped = [segments[1], segments[0], *segments[2:]]
    with pytest.raises(CiphertextError):
        _open(header, swapped)


def test_e5_duplicated_segment_is_refused() -> None:
    """Repeating a segment shifts every later index."""
    header, segments = _seal(os.urandom(3 * SIZE + 1))
    with pytest.raises(CiphertextError):
        _open(header, [segments[0], *segments])


def test_e5_segment_swapped_in_from_another_stream_is_refused() -> None:
    """Same data key, same position: another stream's salt gives another stream key."""
    plaintext = os.urandom(3 * SIZE)
    header, segments = _seal(plaintext)
    _, other = _seal(plaintext)
    with pytest.raises(CiphertextError):
        _open(header, [segments[0], other[1], segments[2]])


def test_e5_header_of_another_stream_is_refused() -> None:
    """Segments opened under another stream's header do not authenticate."""
    _, segments = _seal(os.urandom(2 * SIZE))
    other_header, _ = _seal(os.urandom(2 * SIZE))
    with pytest.raises(CiphertextError):
        _open(other_header, segments)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_e5_flipped_byte_is_refused(where: str) -> None:
    """One flipped bit anywhere in a segment fails that segment's tag."""
    header, segments = _seal(os.urandom(3 * SIZE + 5))
    index = {"first": 0, "middle": 1, "last": len(segments) - 1}[where]
    damaged = bytearray(segments[index])
    damaged[len(damaged) // 2] ^= 0x01
    segments[index] = bytes(damaged)
    with pytest.raises(CiphertextError):
        _open(header, segments)


def test_e5_flipped_header_byte_is_refused() -> None:
    """The header is the AAD of every segment and feeds the key: a flipped bit fails."""
    header, segments = _seal(os.urandom(SIZE))
    damaged = bytearray(header)
    damaged[5] ^= 0x80
    with pytest.raises(CiphertextError):
        _open(bytes(damaged), segments)


def test_e5_extra_trailing_segment_is_refused() -> None:
    """A segment appended after the final one (here: a copy of it) is detected."""
    header, segments = _seal(os.urandom(2 * SIZE + 3))
    with pytest.raises(CiphertextError):
        _open(header, [*segments, segments[-1]])


def test_e5_trailing_garbage_is_refused() -> None:
    """Bytes appended after the end turn the real final segment into a non-final one."""
    header, segments = _seal(os.urandom(2 * SIZE))
    with pytest.raises(CiphertextError):
        _open(header, [*segments, b"\x00" * (TAG_SIZE + 4)])


def test_e5_wrong_key_or_context_is_refused() -> None:
    """Another data key, or the same stream opened for another attachment, does not open."""
    header, segments = _seal(os.urandom(SIZE // 2))
    with pytest.raises(CiphertextError):
        _open(header, segments, key=OTHER_KEY)
    elsewhere = context_aad("org-a", "attachment", "other.pdf", "content")
    with pytest.raises(CiphertextError):
        _open(header, segments, aad=elsewhere)
    with pytest.raises(CiphertextError):
        _open(header, segments, aad=context_aad("org-b", "attachment", "report.pdf", "content"))


def test_e5_another_segment_size_is_refused() -> None:
    """The segment size is bound into the stream key: the same bytes read with another size
    do not open, even where the framing happens to line up."""
    sealer = StreamSealer(KEY, AAD, segment_size=SIZE)
    blob = sealer.seal_segment(b"x" * 10, last=True)
    opener = StreamOpener(KEY, AAD, sealer.header, segment_size=2 * SIZE)
    with pytest.raises(CiphertextError):
        opener.open_segment(blob, 0, last=True)


def test_e5_segment_api_binds_index_and_last_flag() -> None:
    """The low-level opener refuses a segment at another index or with another last flag."""
    sealer = StreamSealer(KEY, AAD, segment_size=SIZE)
    first = sealer.seal_segment(b"a" * SIZE, last=False)
    final = sealer.seal_segment(b"tail", last=True)
    opener = StreamOpener(KEY, AAD, sealer.header, segment_size=SIZE)
    assert opener.open_segment(first, 0, last=False) == b"a" * SIZE
    assert opener.open_segment(final, 1, last=True) == b"tail"
    with pytest.raises(CiphertextError):
        opener.open_segment(final, 1, last=False)
    with pytest.raises(CiphertextError):
        opener.open_segment(final, 2, last=True)
    with pytest.raises(CiphertextError):
        opener.open_segment(first, 1, last=False)
    with pytest.raises(CiphertextError):
        opener.open_segment(b"short", 0, last=True)


def test_e5_sealer_misuse_is_a_programming_error() -> None:
    """A short non-final segment, an oversized one, or anything after the end raises
    ValueError; so does a key that is not 32 bytes."""
    sealer = StreamSealer(KEY, AAD, segment_size=SIZE)
    with pytest.raises(ValueError, match="exactly"):
        sealer.seal_segment(b"short", last=False)
    with pytest.raises(ValueError, match="exactly"):
        sealer.seal_segment(b"x" * (SIZE + 1), last=True)
    sealer.seal_segment(b"end", last=True)
    with pytest.raises(ValueError, match="finished"):
        sealer.seal_segment(b"more", last=True)
    with pytest.raises(ValueError, match="32 bytes"):
        StreamSealer(b"short key", AAD)
    with pytest.raises(ValueError, match="segment size"):
        StreamSealer(KEY, AAD, segment_size=0)


def test_e5_malformed_stream_header_is_refused() -> None:
    """A header of the wrong size or an unknown version is a CiphertextError."""
    header = StreamSealer(KEY, AAD).header
    with pytest.raises(CiphertextError, match="size"):
        StreamOpener(KEY, AAD, header[:-1])
    with pytest.raises(CiphertextError, match="version"):
        StreamOpener(KEY, AAD, b"\x02" + header[1:])


def test_e5_rechunker_holds_back_the_final_piece() -> None:
    """Pieces come out only when more bytes follow; the rest is the final piece."""
    pieces = Rechunker(4)
    assert pieces.push(b"abcd") == []
    assert pieces.push(b"e") == [b"abcd"]
    assert pieces.push(b"fghijkl") == [b"efgh"]
    assert pieces.rest() == b"ijkl"
    assert pieces.rest() == b""


def test_e5_object_header_round_trip_and_refusals() -> None:
    """The stored object header parses back, asks for more bytes while incomplete, and
    refuses another magic, format or absurd sizes (a hostile store cannot make us allocate)."""
    header = ObjectHeader(SIZE, b"w" * 80, StreamSealer(KEY, AAD).header)
    encoded = header.encode() + b"segments..."
    assert parse_object_header(encoded) == (header, len(header.encode()))
    for cut in (0, 5, 10, len(header.encode()) - 1):
        assert parse_object_header(encoded[:cut]) is None
    with pytest.raises(CiphertextError, match="magic"):
        parse_object_header(b"XYZ" + encoded[3:])
    with pytest.raises(CiphertextError, match="format"):
        parse_object_header(encoded[:3] + b"\x09" + encoded[4:])
    with pytest.raises(CiphertextError, match="segment size"):
        parse_object_header(encoded[:4] + b"\xff\xff\xff\xff" + encoded[8:])
    with pytest.raises(CiphertextError, match="wrapped key"):
        parse_object_header(encoded[:8] + b"\xff\xff" + encoded[10:])
