"""The streaming log verifier (L1 tamper evidence): built logs signed with a key made here (the
verifier only needs public keys), then altered, cut, reordered, re-signed or purged."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.audit.domain import merkle
from helios.audit.domain.checkpoint import Checkpoint, checkpoint_note
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.domain.verification import Finding, LogVerifier, Report, keys_from_jwks

pytestmark = pytest.mark.unit

ORG = "0b6e7f52-4c1a-4d8e-9a35-6f0c2d1e8b77"
KID = "5f1d3c9e-0000-4000-8000-000000000001:1"
SEALED = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
Row = tuple[int, dict[str, Any], bytes | None]


def record(index: int, org: str = ORG, **overrides: Any) -> dict[str, Any]:
    """The leaf record of a plausible audit row at `index`."""
    value: dict[str, Any] = {
        "index": index,
        "event_id": str(uuid.UUID(int=index + 1)),
        "org_id": org,
        "occurred_at": "2026-02-03T04:05:06.000000Z",
        "recorded_at": "2026-02-03T04:05:07.250000Z",
        "actor_type": "user",
        "actor_id": f"user-{index % 7}",
        "session_id": "session-1",
        "impersonator_id": "",
        "action": "identity.user.update",
        "resource_type": "identity.user",
        "resource_id": f"user-{index}",
        "input_hash": "a1" * 32,
        "output_hash": "b2" * 32,
        "ip": "203.0.113.7",
        "user_agent": "unit/1.0",
        "diff": {"display_name": {"from": "Ada", "to": f"Ada {index}"}, "n": index},
        "decision_id": "",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "producer": "identity",
        "outcome": 1,
    }
    value.update(overrides)
    return value


def leaf(rec: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(leaf_bytes(rec))


def public_jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kid": kid, "kty": "OKP", "crv": "Ed25519", "x": x}


def sign(
    key: Ed25519PrivateKey,
    size: int,
    root: bytes,
    previous: tuple[int, bytes] = (0, merkle.EMPTY_ROOT),
    *,
    org: str = ORG,
    kid: str = KID,
) -> Checkpoint:
    note = checkpoint_note(org, size, root, SEALED, previous[0], previous[1])
    return Checkpoint(org, size, root, SEALED, previous[0], previous[1], kid, key.sign(note))


@dataclass
class SignedLog:
    """An org's log: records, stored hashes and chained checkpoints at `sizes`."""

    size: int
    sizes: Sequence[int]
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def __post_init__(self) -> None:
        self.records = [record(i) for i in range(self.size)]
        self.hashes = [leaf(r) for r in self.records]
        self.checkpoints: list[Checkpoint] = []
        previous = (0, merkle.EMPTY_ROOT)
        for size in self.sizes:
            root = merkle.root_from_leaves(self.hashes[:size])
            self.checkpoints.append(sign(self.key, size, root, previous))
            previous = (size, root)

    @property
    def keys(self) -> dict[str, Any]:
        return keys_from_jwks([public_jwk(self.key, KID)])

    def rows(self) -> list[Row]:
        return [
            (i, dict(r), h) for i, (r, h) in enumerate(zip(self.records, self.hashes, strict=True))
        ]


def verify(
    log: SignedLog,
    rows: Iterable[Row] | None = None,
    checkpoints: Sequence[Checkpoint] | None = None,
    **options: Any,
) -> Report:
    verifier = LogVerifier(
        ORG, log.checkpoints if checkpoints is None else checkpoints, log.keys, **options
    )
    for index, rec, stored in log.rows() if rows is None else rows:
        verifier.feed(index, rec, stored)
    return verifier.finish()


def kinds(report: Report) -> list[tuple[str, int | None]]:
    return [(f.kind, f.index) for f in report.findings]


@pytest.fixture(scope="module")
def log() -> SignedLog:
    return SignedLog(40, [8, 21, 40])


# --- an untouched log --------------------------------------------------------------------------


def test_l1_untouched_log_verifies(log: SignedLog) -> None:
    report = verify(log)
    assert report.ok
    assert report.findings == ()
    assert report.first_bad_index is None
    assert (report.leaves_read, report.size, report.checkpoints_verified) == (40, 40, 3)


def test_l1_log_beyond_its_latest_checkpoint_verifies() -> None:
    """Rows appended since the last seal are read and re-hashed; nothing vouches for them yet."""
    log = SignedLog(30, [8, 21])
    report = verify(log)
    assert report.ok
    assert report.checkpoints_verified == 2


def test_l1_empty_log_without_checkpoints_verifies() -> None:
    report = LogVerifier(ORG, [], {}).finish()
    assert report.ok
    assert (report.leaves_read, report.size) == (0, 0)


# --- altered leaves ----------------------------------------------------------------------------


def test_l1_altered_leaf_is_localised_by_its_stored_hash(log: SignedLog) -> None:
    """An UPDATE of one row's diff: the re-hashed leaf differs from the stored hash there, and
    every checkpoint from then on differs (the later ones summed up in one finding)."""
    rows = log.rows()
    rows[13][1]["diff"] = {"display_name": {"from": "Ada", "to": "Mallory"}}
    report = verify(log, rows)
    assert not report.ok
    assert report.first_bad_index == 13
    assert kinds(report) == [("altered", 13), ("checkpoint_root", 13), ("checkpoint_root", None)]
    assert "stored one" in report.findings[0].detail
    assert "size 21" in report.findings[1].detail
    assert "up to size 40" in report.findings[2].detail
    assert report.checkpoints_verified == 1


def test_l1_rehashed_alteration_is_localised_to_the_last_good_checkpoint(
    log: SignedLog,
) -> None:
    """The attacker also rewrote leaf_hash: only the signed root catches it, so the first bad
    index is the first leaf the last matching checkpoint does not vouch for."""
    rows = log.rows()
    changed = record(13, action="identity.user.delete")
    rows[13] = (13, changed, leaf(changed))
    report = verify(log, rows)
    assert kinds(report) == [("checkpoint_root", 8), ("checkpoint_root", None)]
    assert report.first_bad_index == 8


def test_l1_swapped_rows_are_altered_at_both_indexes(log: SignedLog) -> None:
    """Two rows' contents exchanged (each keeps its position and stored hash)."""
    rows = log.rows()
    rows[5] = (5, {**log.records[30], "index": 5}, log.hashes[5])
    rows[30] = (30, {**log.records[5], "index": 30}, log.hashes[30])
    report = verify(log, rows)
    assert report.first_bad_index == 5
    assert [f for f in kinds(report) if f[0] == "altered"] == [("altered", 5), ("altered", 30)]


def test_l1_swapped_rows_with_their_hashes_still_differ(log: SignedLog) -> None:
    """Moving a row (hash and all) to another position changes its leaf: the index is hashed."""
    rows = log.rows()
    rows[5] = (5, {**log.records[30], "index": 5}, log.hashes[30])
    rows[30] = (30, {**log.records[5], "index": 30}, log.hashes[5])
    report = verify(log, rows)
    assert [f for f in kinds(report) if f[0] == "altered"] == [("altered", 5), ("altered", 30)]


def test_l1_record_naming_another_index_or_org_is_altered(log: SignedLog) -> None:
    rows = log.rows()
    rows[3] = (3, record(4), log.hashes[3])
    rows[6] = (6, record(6, org="someone-else"), log.hashes[6])
    report = verify(log, rows)
    altered = [f for f in report.findings if f.kind == "altered"]
    assert [(f.index, "index 4" in f.detail, "someone-else" in f.detail) for f in altered] == [
        (3, True, False),
        (6, False, True),
    ]


def test_l1_unreadable_record_is_altered_and_stops_the_root(log: SignedLog) -> None:
    rows = log.rows()
    del rows[9][1]["diff"]
    report = verify(log, rows)
    assert kinds(report) == [("altered", 9)]
    assert "not a leaf record" in report.findings[0].detail
    assert report.checkpoints_verified == 1


# --- missing, unexpected, truncated ------------------------------------------------------------


def test_l1_deleted_row_shows_as_missing_index(log: SignedLog) -> None:
    rows = log.rows()
    del rows[13]
    report = verify(log, rows)
    assert kinds(report) == [("missing", 13)]
    assert report.findings[0].detail == "leaf 13 is missing"
    assert report.first_bad_index == 13
    assert report.checkpoints_verified == 1  # size 8; past the gap no root can be rebuilt


def test_l1_deleted_range_is_one_finding(log: SignedLog) -> None:
    rows = log.rows()
    del rows[10:14]
    report = verify(log, rows)
    assert kinds(report) == [("missing", 10)]
    assert report.findings[0].detail == "leaves 10..13 are missing"


def test_l1_reordering_shows_as_wrong_positions(log: SignedLog) -> None:
    rows = log.rows()
    rows[10], rows[11] = rows[11], rows[10]
    report = verify(log, rows)
    assert kinds(report) == [("missing", 10), ("unexpected", 10)]
    assert "read after index 11" in report.findings[1].detail
    assert report.first_bad_index == 10


def test_l1_repeated_index_is_unexpected_and_the_rest_still_verifies(log: SignedLog) -> None:
    rows = log.rows()
    rows.insert(11, rows[10])
    report = verify(log, rows)
    assert kinds(report) == [("unexpected", 10)]
    assert report.checkpoints_verified == 3


def test_l1_cut_tail_is_truncation(log: SignedLog) -> None:
    """The last rows deleted after a checkpoint covered them."""
    report = verify(log, log.rows()[:35])
    assert kinds(report) == [("truncated", 35)]
    assert report.findings[0].detail == "the log ends at 35 leaves; a signed checkpoint covers 40"
    assert report.first_bad_index == 35
    assert report.checkpoints_verified == 2


def test_l1_cut_tail_beyond_the_checkpoints_is_caught_by_the_recorded_size() -> None:
    log = SignedLog(40, [8, 21])
    assert verify(log, log.rows()[:37]).ok  # nothing signed covers 37..39
    report = verify(log, log.rows()[:37], expected_size=40)
    assert kinds(report) == [("truncated", 37)]


# --- checkpoints -------------------------------------------------------------------------------


def test_l1_forged_checkpoint_fails_its_signature(log: SignedLog) -> None:
    """A checkpoint whose root was replaced: not signed, so not trusted, and the one after it
    no longer chains to a trusted checkpoint. Neither names a leaf."""
    forged = [log.checkpoints[0], *log.checkpoints[1:]]
    middle = forged[1]
    forged[1] = Checkpoint(
        ORG, 21, bytes(32), SEALED, 8, middle.previous_root_hash, KID, middle.signature
    )
    report = verify(log, checkpoints=forged)
    assert kinds(report) == [("checkpoint_signature", None), ("checkpoint_chain", None)]
    assert "does not verify" in report.findings[0].detail
    assert not report.ok
    assert report.first_bad_index is None


def test_l1_checkpoint_by_unknown_key_or_for_another_org_is_refused(log: SignedLog) -> None:
    stranger = Ed25519PrivateKey.generate()
    other_kid = sign(stranger, 8, log.checkpoints[0].root_hash, kid="other:1")
    other_org = sign(log.key, 8, log.checkpoints[0].root_hash, org="another-org")
    report = verify(log, checkpoints=[other_kid, other_org, *log.checkpoints[1:]])
    assert [f.kind for f in report.findings[:2]] == ["checkpoint_signature"] * 2
    assert "no public key with kid 'other:1'" in report.findings[0].detail
    assert "another-org" in report.findings[1].detail


def test_l1_deleted_checkpoints_break_the_chain(log: SignedLog) -> None:
    without_middle = verify(log, checkpoints=[log.checkpoints[0], log.checkpoints[2]])
    assert kinds(without_middle) == [("checkpoint_chain", None)]
    assert "not to the checkpoint before it (size 8)" in without_middle.findings[0].detail
    without_first = verify(log, checkpoints=log.checkpoints[1:])
    assert kinds(without_first) == [("checkpoint_chain", None)]
    assert "an earlier checkpoint is missing" in without_first.findings[0].detail


def test_l1_checkpoint_signed_over_a_wrong_root_is_a_root_mismatch(log: SignedLog) -> None:
    """A genuine signature over a root the log never had (a forked log): localised to the range
    that checkpoint adds; the checkpoints after it chain to it and match the real log again."""
    bogus = sign(log.key, 21, bytes(32), (8, log.checkpoints[0].root_hash))
    last = log.checkpoints[2]
    rechained = sign(log.key, 40, last.root_hash, (21, bytes(32)))
    report = verify(log, checkpoints=[log.checkpoints[0], bogus, rechained])
    assert kinds(report) == [("checkpoint_root", 8)]
    assert report.checkpoints_verified == 2


# --- purged ranges -----------------------------------------------------------------------------


def _purge(log: SignedLog, lo: int, hi: int) -> tuple[int, int, bytes]:
    return lo, hi, merkle.root_from_leaves(log.hashes[lo:hi])


def test_l1_purged_prefix_is_accepted_in_place_of_its_leaves(log: SignedLog) -> None:
    purged = [_purge(log, 0, 16), _purge(log, 16, 24)]
    report = verify(log, log.rows()[24:], purged=purged)
    assert report.ok
    assert report.purged == ((0, 16), (16, 24))
    assert (report.leaves_read, report.size) == (16, 40)
    assert report.checkpoints_verified == 1  # 8 and 21 lie inside the purged ranges


def test_l1_purged_middle_range_keeps_later_checkpoints_verifiable(log: SignedLog) -> None:
    rows = log.rows()
    report = verify(log, rows[:8] + rows[16:], purged=[_purge(log, 8, 16)])
    assert report.ok
    assert report.checkpoints_verified == 3


def test_l1_wrong_purge_digest_is_a_root_mismatch(log: SignedLog) -> None:
    report = verify(log, log.rows()[16:], purged=[(0, 16, bytes(32))])
    assert kinds(report) == [("checkpoint_root", 0), ("checkpoint_root", None)]


def test_l1_row_left_in_a_purged_range_is_unexpected(log: SignedLog) -> None:
    rows = log.rows()
    report = verify(log, [rows[3], *rows[16:]], purged=[_purge(log, 0, 16)])
    assert kinds(report) == [("unexpected", 3)]
    assert "purged" in report.findings[0].detail


def test_l1_gap_before_a_purged_range_is_missing(log: SignedLog) -> None:
    rows = log.rows()
    report = verify(log, rows[:5] + rows[16:], purged=[_purge(log, 8, 16)])
    assert kinds(report) == [("missing", 5)]
    assert report.findings[0].detail == "leaves 5..7 are missing"
    assert report.purged == ((8, 16),)


@pytest.mark.parametrize(
    "purged",
    [[(0, 12, bytes(32))], [(4, 12, bytes(32))], [(0, 8, bytes(32)), (4, 8, bytes(32))]],
)
def test_l1_purged_ranges_must_be_perfect_aligned_subtrees(
    log: SignedLog, purged: list[tuple[int, int, bytes]]
) -> None:
    with pytest.raises(ValueError, match="purged range"):
        LogVerifier(ORG, log.checkpoints, log.keys, purged=purged)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=8), st.integers(0, 9))
def test_l1_streaming_root_takes_aligned_subtrees_in_place_of_leaves(
    levels: list[int], tail: int
) -> None:
    """StreamingRoot.add_subtree (what a purged range feeds) gives the root of the leaves."""
    stream = merkle.StreamingRoot()
    leaves: list[bytes] = []
    for level in levels:
        while stream.size % (1 << level):  # pad with single leaves to an aligned start
            leaves.append(merkle.leaf_hash(b"%d" % len(leaves)))
            stream.add(leaves[-1])
        block = [merkle.leaf_hash(b"%d" % (len(leaves) + i)) for i in range(1 << level)]
        leaves += block
        stream.add_subtree(level, merkle.root_from_leaves(block))
    for _ in range(tail):
        leaves.append(merkle.leaf_hash(b"%d" % len(leaves)))
        stream.add(leaves[-1])
    assert stream.size == len(leaves)
    assert stream.root() == merkle.root_from_leaves(leaves)


def test_l1_streaming_root_refuses_a_misaligned_subtree() -> None:
    stream = merkle.StreamingRoot()
    stream.add(merkle.leaf_hash(b"a"))
    with pytest.raises(ValueError, match="cannot start at 1"):
        stream.add_subtree(1, bytes(32))


# --- the report and the keys -------------------------------------------------------------------


def test_l1_findings_beyond_the_limit_are_counted(log: SignedLog) -> None:
    rows = [(i, rec, bytes(32)) for i, rec, _ in log.rows()]
    report = verify(log, rows, max_findings=5)
    assert len(report.findings) == 5
    assert report.findings_omitted == 35  # 40 altered leaves; the roots still hold
    assert report.first_bad_index == 0
    assert report.checkpoints_verified == 3


def test_l1_finish_is_final(log: SignedLog) -> None:
    verifier = LogVerifier(ORG, log.checkpoints, log.keys)
    for index, rec, stored in log.rows():
        verifier.feed(index, rec, stored)
    assert verifier.leaves_read == 40
    assert verifier.finish() is verifier.finish()
    with pytest.raises(RuntimeError):
        verifier.feed(40, record(40), None)


def test_l1_leaves_without_stored_hashes_are_checked_by_the_checkpoints(log: SignedLog) -> None:
    rows = [(i, rec, None) for i, rec, _ in log.rows()]
    assert verify(log, rows).ok
    rows[20][1]["ip"] = "198.51.100.1"
    assert kinds(verify(log, rows)) == [("checkpoint_root", 8), ("checkpoint_root", None)]


def test_l1_keys_from_jwks() -> None:
    key = Ed25519PrivateKey.generate()
    keys = keys_from_jwks([public_jwk(key, "a:1")])
    assert list(keys) == ["a:1"]
    assert keys["a:1"].public_bytes(
        Encoding.Raw, PublicFormat.Raw
    ) == key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with pytest.raises(ValueError, match="no kid"):
        keys_from_jwks([{"kty": "OKP", "crv": "Ed25519", "x": "AA"}])
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        keys_from_jwks([{"kid": "r", "kty": "RSA", "n": "x", "e": "AQAB"}])
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        keys_from_jwks([{"kid": "short", "kty": "OKP", "crv": "Ed25519", "x": "AAAA"}])


def test_l1_finding_is_a_value() -> None:
    assert Finding("missing", 3, "leaf 3 is missing") == Finding("missing", 3, "leaf 3 is missing")
