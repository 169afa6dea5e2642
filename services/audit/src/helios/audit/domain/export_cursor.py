"""Export cursors: where a streamed export bundle resumes, as an opaque token checked on return."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from helios.kernel.errors import InvalidArgumentError

__all__ = ["MAX_CURSOR_LENGTH", "ExportPosition", "decode_cursor", "encode_cursor"]

MAX_CURSOR_LENGTH = 512
"""Characters in a cursor; anything longer is refused before it is decoded."""

_VERSION = 1
_CONTEXT = b"helios-audit-export-cursor/v1\n"
_DIGEST_BYTES = 12
_MAX_INDEX = 2**63 - 1  # sizes are PostgreSQL bigints


@dataclass(frozen=True, slots=True)
class ExportPosition:
    """An export of the slice [lo, hi) of `org_id`'s log, anchored on its checkpoint of
    `tree_size` leaves, whose next gzip member starts at leaf `next_index` (lo for a new
    export; in a cursor lo < next_index < hi: the first member was sent, the last was not)."""

    org_id: str
    lo: int
    hi: int
    tree_size: int
    next_index: int


def _digest(payload: bytes) -> bytes:
    return hashlib.sha256(_CONTEXT + payload).digest()[:_DIGEST_BYTES]


def encode_cursor(position: ExportPosition) -> str:
    """The token of `position`: URL-safe base64 (no padding) of a digest and the fields. The
    digest catches a corrupted or hand-edited token; it is not a secret and not a capability
    (whoever presents a cursor is authorized for the org again, and its numbers are checked
    against the log)."""
    fields = [
        _VERSION,
        position.org_id,
        position.lo,
        position.hi,
        position.tree_size,
        position.next_index,
    ]
    payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(_digest(payload) + payload).rstrip(b"=").decode()


def _refused(reason: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"the cursor {reason}", field="cursor")


def _index(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INDEX:
        raise _refused("is not one this service issued")
    return value


def decode_cursor(token: str, org_id: str) -> ExportPosition:
    """The position a cursor of `encode_cursor` names, for an export of `org_id`'s log. Raises
    InvalidArgumentError (field `cursor`) for a token that is too long, not base64, fails its
    digest, is of another version or shape, has bounds out of order, or belongs to another
    org's export. Whether `tree_size` is a checkpoint of the org is the caller's check."""
    if len(token) > MAX_CURSOR_LENGTH:
        raise _refused(f"is longer than {MAX_CURSOR_LENGTH} characters")
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise _refused("is not one this service issued") from None
    digest, payload = raw[:_DIGEST_BYTES], raw[_DIGEST_BYTES:]
    if not payload or not hmac.compare_digest(digest, _digest(payload)):
        raise _refused("is damaged or not one this service issued")
    try:
        fields = json.loads(payload)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise _refused("is not one this service issued") from None
    if not isinstance(fields, list) or len(fields) != 6 or fields[0] != _VERSION:
        raise _refused("is of another version of the export")
    _, owner, *numbers = fields
    if not isinstance(owner, str):
        raise _refused("is not one this service issued")
    if owner != org_id:
        raise _refused("belongs to an export of another org")
    lo, hi, tree_size, next_index = (_index(n) for n in numbers)
    if not lo < next_index < hi <= tree_size:
        raise _refused("names no position inside its export")
    return ExportPosition(owner, lo, hi, tree_size, next_index)
