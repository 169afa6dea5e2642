"""Retention rules (L2): tier periods, due segments, the signed bytes of a purge record."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helios.audit.domain.retention import (
    DEFAULT_SEGMENT_LEVEL,
    RETENTION,
    PurgeRecord,
    Segment,
    SegmentScan,
    Tier,
    check_segment_level,
    cutoff,
    due_segments,
    parse_tier,
    purge_note,
    purge_record_valid,
)
from helios.kernel.errors import InvalidArgumentError

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_l2_tiers_keep_at_least_their_calendar_period() -> None:
    """L2: free 90 days, starter 1 year, business 3 years, enterprise 7 years, never shorter
    than the calendar period, whatever leap days it spans."""
    assert RETENTION[Tier.FREE] == 90 * DAY
    for tier, years in ((Tier.STARTER, 1), (Tier.BUSINESS, 3), (Tier.ENTERPRISE, 7)):
        longest = max(
            _anniversary(begin, years) - begin
            for begin in (dt.datetime(2019, 12, 1, tzinfo=dt.UTC) + n * DAY for n in range(3000))
        )
        assert RETENTION[tier] == longest, tier
    assert [t.value for t in Tier] == ["free", "starter", "business", "enterprise"]


def _anniversary(begin: dt.datetime, years: int) -> dt.datetime:
    """The same date `years` later; 29 February ends on 1 March in a common year."""
    try:
        return begin.replace(year=begin.year + years)
    except ValueError:
        return begin.replace(year=begin.year + years, month=3, day=1)


def test_l2_cutoff_is_now_minus_the_period() -> None:
    """L2: events that occurred before the cutoff are past retention."""
    assert cutoff(Tier.FREE, NOW) == NOW - 90 * DAY
    assert cutoff(Tier.ENTERPRISE, NOW) == NOW - 2557 * DAY
    with pytest.raises(ValueError, match="timezone"):
        cutoff(Tier.FREE, NOW.replace(tzinfo=None))


def test_l2_parse_tier_names_the_field() -> None:
    """L2: an unknown tier is an InvalidArgumentError on `tier`."""
    assert parse_tier("business") is Tier.BUSINESS
    for bad in ("", "FREE", "gold", "unspecified"):
        with pytest.raises(InvalidArgumentError) as refused:
            parse_tier(bad)
        assert refused.value.field == "tier"


def test_l2_segment_levels() -> None:
    """L2: 4,096-leaf segments by default; levels outside 1..30 are refused."""
    assert DEFAULT_SEGMENT_LEVEL == 12
    assert check_segment_level(2) == 2
    for bad in (0, -1, 31):
        with pytest.raises(ValueError, match="segment level"):
            check_segment_level(bad)
    assert (Segment(12, 3).first, Segment(12, 3).end) == (12288, 16384)
    assert (Segment(2, 0).first, Segment(2, 0).end) == (0, 4)


def test_l2_due_segments_are_whole_checkpointed_and_wholly_expired() -> None:
    """L2: only segments wholly inside both the log and its latest checkpoint, whose newest
    event is before the cutoff; a recent event keeps its whole segment but not later ones."""
    cut = NOW - 90 * DAY
    old, recent = cut - DAY, cut + DAY
    scan = SegmentScan(
        log_size=22,
        checkpoint_size=19,
        newest={0: old, 1: recent, 2: old, 3: old, 4: old, 5: old},
    )
    assert due_segments(scan, cut, 2) == [Segment(2, 0), Segment(2, 2), Segment(2, 3)]
    # the newest event exactly at the cutoff is not before it
    assert due_segments(SegmentScan(8, 8, {0: cut, 1: old}), cut, 2) == [Segment(2, 1)]
    # purged segments have no rows any more, so no entry: nothing to do
    assert due_segments(SegmentScan(8, 8, {1: old}), cut, 2) == [Segment(2, 1)]
    # no checkpoint, or a log shorter than a segment: nothing
    assert due_segments(SegmentScan(8, 0, {0: old, 1: old}), cut, 2) == []
    assert due_segments(SegmentScan(3, 3, {0: old}), cut, 2) == []


def _record(key: Ed25519PrivateKey, **overrides: object) -> PurgeRecord:
    fields: dict[str, object] = {
        "org_id": "org-1",
        "first_index": 8,
        "end_index": 12,
        "level": 2,
        "idx": 2,
        "range_hash": bytes(range(32)),
        "newest_occurred_at": NOW - 100 * DAY,
        "cutoff": NOW - 90 * DAY,
        "tier": Tier.FREE,
        "purged_at": NOW,
        "key_id": "k:1",
        "signature": b"",
    }
    fields.update(overrides)
    unsigned = PurgeRecord(**fields)  # type: ignore[arg-type]
    return dataclasses.replace(unsigned, signature=key.sign(unsigned.note()))


def test_l2_purge_note_has_one_field_per_line() -> None:
    """L2: the signed bytes name the org, the range, the node, the times, the tier."""
    note = purge_note(
        "org-1",
        Segment(2, 2),
        bytes(range(32)),
        dt.datetime(2026, 2, 1, 0, 0, 0, 5, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC),
        Tier.FREE,
        NOW,
    )
    assert note.decode().split("\n") == [
        "helios-audit-purge/v1",
        "org-1",
        "8",
        "12",
        "2",
        "2",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "2026-02-01T00:00:00.000005Z",
        "2026-03-03T12:00:00.000000Z",
        "free",
        "2026-06-01T12:00:00.000000Z",
        "",
    ]


def test_l2_purge_record_valid_only_for_the_signed_record() -> None:
    """L2: the record verifies with its kid's key; any changed field, another key, an unknown
    kid, or a record that is not a purge by policy (not a segment, an event at the cutoff, a
    cutoff later than the tier allows) does not, even when signed."""
    key = Ed25519PrivateKey.generate()
    keys = {"k:1": key.public_key()}
    record = _record(key)
    assert purge_record_valid(record, keys)
    for change in (
        {"org_id": "org-2"},
        {"range_hash": bytes(32)},
        {"tier": Tier.ENTERPRISE},
        {"cutoff": NOW - 91 * DAY},
        {"purged_at": NOW + DAY},
    ):
        assert not purge_record_valid(dataclasses.replace(record, **change), keys), change
    assert not purge_record_valid(record, {"k:1": Ed25519PrivateKey.generate().public_key()})
    assert not purge_record_valid(record, {"k:2": key.public_key()})
    assert not purge_record_valid(_record(key, first_index=4), keys)
    assert not purge_record_valid(_record(key, newest_occurred_at=NOW - 90 * DAY), keys)
    assert not purge_record_valid(_record(key, cutoff=NOW - 89 * DAY), keys)
    assert not purge_record_valid(_record(key, tier=Tier.STARTER), keys)
    assert not purge_record_valid(_record(key, level=0, idx=8, end_index=9), keys)
    assert purge_record_valid(
        _record(key, cutoff=NOW - 100 * DAY, newest_occurred_at=NOW - 101 * DAY), keys
    )
    assert not purge_record_valid(dataclasses.replace(record, signature=b"short"), keys)
