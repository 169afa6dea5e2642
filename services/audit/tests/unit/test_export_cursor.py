"""Export cursors (L2): opaque tokens that round-trip and refuse anything but what was issued."""

from __future__ import annotations

import base64
import json

import pytest

from helios.audit.domain.export_cursor import (
    MAX_CURSOR_LENGTH,
    ExportPosition,
    decode_cursor,
    encode_cursor,
)
from helios.kernel.errors import InvalidArgumentError

pytestmark = pytest.mark.unit

ORG = "7d1c2b3a-9e8f-4a5b-8c7d-6e5f4a3b2c1d"
POSITION = ExportPosition(ORG, lo=150, hi=2400, tree_size=2500, next_index=1150)


def refused(token: str, org_id: str = ORG) -> str:
    with pytest.raises(InvalidArgumentError) as caught:
        decode_cursor(token, org_id)
    assert caught.value.field == "cursor"
    return caught.value.message


def test_l2_cursor_round_trips_and_is_url_safe() -> None:
    token = encode_cursor(POSITION)
    assert decode_cursor(token, ORG) == POSITION
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(encode_cursor(ExportPosition("x" * 64, 0, 2**62, 2**63 - 1, 1))) <= (
        MAX_CURSOR_LENGTH
    )


def test_l2_cursor_of_another_org_is_refused() -> None:
    assert "another org" in refused(encode_cursor(POSITION), "another-org")


def test_l2_corrupted_or_edited_cursor_is_refused() -> None:
    token = encode_cursor(POSITION)
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    digest, payload = raw[:12], raw[12:]
    fields = json.loads(payload)
    fields[5] = 1151  # an edited next index, the old digest kept
    edited = digest + json.dumps(fields, separators=(",", ":")).encode()
    for bad in (
        flipped,
        token[:-4],
        token + "AAAA",
        "not base64 at all!",
        "",
        base64.urlsafe_b64encode(edited).decode(),
        "A" * (MAX_CURSOR_LENGTH + 1),
    ):
        refused(bad)


@pytest.mark.parametrize(
    ("lo", "hi", "size", "next_index"),
    [(5, 10, 20, 5), (5, 10, 20, 10), (10, 5, 20, 7), (5, 30, 20, 7), (-1, 10, 20, 5)],
)
def test_l2_cursor_outside_its_export_is_refused(
    lo: int, hi: int, size: int, next_index: int
) -> None:
    """Well-formed and correctly digested, but no cursor the export issues: the first member
    is always sent before one (next > lo) and the last carries none (next < hi)."""
    refused(encode_cursor(ExportPosition(ORG, lo, hi, size, next_index)))
