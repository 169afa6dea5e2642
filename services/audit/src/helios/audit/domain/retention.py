"""Retention by tier (L2): tier periods, log segments, which segments are due, purge records."""

from __future__ import annotations

import base64
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from helios.audit.domain.leaf import timestamp
from helios.kernel.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_SEGMENT_LEVEL",
    "MAX_SEGMENT_LEVEL",
    "MIN_SEGMENT_LEVEL",
    "RETENTION",
    "PurgeRecord",
    "Segment",
    "SegmentScan",
    "Tier",
    "check_segment_level",
    "cutoff",
    "due_segments",
    "parse_tier",
    "purge_note",
    "purge_record_valid",
]

_HEADER = "helios-audit-purge/v1"


class Tier(enum.StrEnum):
    """An org's retention tier; the value is what `audit.org_retention.tier` stores."""

    FREE = "free"
    STARTER = "starter"
    BUSINESS = "business"
    ENTERPRISE = "enterprise"


# How long each tier keeps an event after it occurred. Years are counted as the longest they can
# be (a year 366 days, 3 years 1,096, 7 years 2,557), so a row is never purged before the
# calendar period is over. `audit.retention_period()` in migration 0003 enforces the same values
# in the database; an integration test holds the two together.
RETENTION: Mapping[Tier, dt.timedelta] = {
    Tier.FREE: dt.timedelta(days=90),
    Tier.STARTER: dt.timedelta(days=366),
    Tier.BUSINESS: dt.timedelta(days=1096),
    Tier.ENTERPRISE: dt.timedelta(days=2557),
}

DEFAULT_SEGMENT_LEVEL = 12
"""Segments of 2**12 = 4,096 leaves: the unit a purge removes."""
MIN_SEGMENT_LEVEL = 1
MAX_SEGMENT_LEVEL = 30


def parse_tier(value: str) -> Tier:
    """The tier named `value`; InvalidArgumentError (field `tier`) for anything else."""
    try:
        return Tier(value)
    except ValueError:
        names = ", ".join(t.value for t in Tier)
        raise InvalidArgumentError(f"tier must be one of {names}", field="tier") from None


def cutoff(tier: Tier, now: dt.datetime) -> dt.datetime:
    """Events that occurred before this instant are past the tier's retention at `now`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now - RETENTION[tier]


def check_segment_level(value: int) -> int:
    """A valid segment level (MIN_SEGMENT_LEVEL..MAX_SEGMENT_LEVEL); ValueError otherwise."""
    if not MIN_SEGMENT_LEVEL <= value <= MAX_SEGMENT_LEVEL:
        raise ValueError(
            f"segment level must be {MIN_SEGMENT_LEVEL}..{MAX_SEGMENT_LEVEL}, got {value}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Segment:
    """The perfect aligned subtree (level, idx): leaves [idx * 2**level, (idx + 1) * 2**level),
    the unit a purge removes; its hash is the Merkle node (level, idx)."""

    level: int
    idx: int

    @property
    def first(self) -> int:
        """The first leaf index in the segment."""
        return self.idx << self.level

    @property
    def end(self) -> int:
        """One past the last leaf index in the segment."""
        return (self.idx + 1) << self.level


@dataclass(frozen=True, slots=True)
class SegmentScan:
    """What deciding an org's due segments needs: the log size, the size of its latest
    checkpoint (0 if none), and the newest `occurred_at` of each segment that still has rows."""

    log_size: int
    checkpoint_size: int
    newest: Mapping[int, dt.datetime]


def due_segments(scan: SegmentScan, cut: dt.datetime, level: int) -> list[Segment]:
    """Segments of `level` to purge, oldest first: wholly in the log and covered by the latest
    checkpoint, still holding rows, every row of which occurred before `cut`. A segment with a
    single event at or after `cut` stays whole; later segments may still be due."""
    limit = min(scan.log_size, scan.checkpoint_size)
    whole = limit >> level
    return [
        Segment(level, idx)
        for idx, newest in sorted(scan.newest.items())
        if 0 <= idx < whole and newest < cut
    ]


@dataclass(frozen=True, slots=True)
class PurgeRecord:
    """A signed statement that leaves [first_index, end_index) of an org's log were removed by
    policy: the kept `range_hash` (the Merkle node (level, idx)) stands in for them, so the rest
    of the log still reproduces every checkpoint root. `newest_occurred_at` is the newest event
    removed, `cutoff` the retention bound it was below, `tier` the org's tier at the time."""

    org_id: str
    first_index: int
    end_index: int
    level: int
    idx: int
    range_hash: bytes
    newest_occurred_at: dt.datetime
    cutoff: dt.datetime
    tier: Tier
    purged_at: dt.datetime
    key_id: str
    signature: bytes

    def note(self) -> bytes:
        """The bytes its signature covers (see purge_note)."""
        return purge_note(
            self.org_id,
            Segment(self.level, self.idx),
            self.range_hash,
            self.newest_occurred_at,
            self.cutoff,
            self.tier,
            self.purged_at,
        )


def purge_note(
    org_id: str,
    segment: Segment,
    range_hash: bytes,
    newest_occurred_at: dt.datetime,
    cut: dt.datetime,
    tier: Tier,
    purged_at: dt.datetime,
) -> bytes:
    """The exact bytes a purge record's signature covers: one field per line, each ending in a
    newline: "helios-audit-purge/v1", org_id, first_index, end_index, level, idx,
    base64(range_hash), newest_occurred_at, cutoff, tier, purged_at (times as RFC 3339 UTC with
    microseconds)."""
    lines = [
        _HEADER,
        org_id,
        str(segment.first),
        str(segment.end),
        str(segment.level),
        str(segment.idx),
        base64.b64encode(range_hash).decode(),
        timestamp(newest_occurred_at),
        timestamp(cut),
        tier.value,
        timestamp(purged_at),
    ]
    return ("\n".join(lines) + "\n").encode()


def purge_record_valid(record: PurgeRecord, keys: Mapping[str, Ed25519PublicKey]) -> bool:
    """Whether the record shows a purge by policy: its range is the segment (level, idx), every
    event removed occurred before the cutoff, the cutoff is no later than its tier allowed at
    `purged_at`, and it is signed by the key its `key_id` names, among `keys` (by kid). A
    verifier accepts a purged range only on such a record: a deletion with a copied node hash
    and no valid signature is tampering. Never raises."""
    segment = Segment(record.level, record.idx)
    if record.level < MIN_SEGMENT_LEVEL or record.level > MAX_SEGMENT_LEVEL or record.idx < 0:
        return False
    if (record.first_index, record.end_index) != (segment.first, segment.end):
        return False
    if not record.newest_occurred_at < record.cutoff <= cutoff(record.tier, record.purged_at):
        return False
    key = keys.get(record.key_id)
    if key is None:
        return False
    try:
        key.verify(record.signature, record.note())
    except (InvalidSignature, ValueError):
        return False
    return True
