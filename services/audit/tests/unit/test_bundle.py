"""Export bundles verified offline (L2): written from a built log signed with a key made here,
then checked untouched and after each kind of edit (a field, a removed line, a swapped pair, a
forged or re-signed checkpoint, a cut file)."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from helios.audit.domain import merkle
from helios.audit.domain.bundle import (
    FORMAT,
    BundleError,
    checkpoint_from_json,
    checkpoint_to_json,
    event_line,
    gzip_member,
    header_line,
    trailer_lines,
    verify_bundle,
    write_bundle,
)
from helios.audit.domain.checkpoint import Checkpoint, checkpoint_note
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.domain.verification import Report, keys_from_jwks

pytestmark = pytest.mark.unit

ORG = "7d1c2b3a-9e8f-4a5b-8c7d-6e5f4a3b2c1d"
KID = "9a8b7c6d-0000-4000-8000-000000000002:3"
SEALED = dt.datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=dt.UTC)
SIZE = 40


def record(index: int) -> dict[str, Any]:
    return {
        "index": index,
        "event_id": str(uuid.UUID(int=1000 + index)),
        "org_id": ORG,
        "occurred_at": "2026-02-03T04:05:06.000000Z",
        "recorded_at": "2026-02-03T04:05:07.000001Z",
        "actor_type": "service",
        "actor_id": "svc-7",
        "session_id": "",
        "impersonator_id": "",
        "action": "keyvault.key.rotate",
        "resource_type": "keyvault.key",
        "resource_id": f"key-{index}",
        "input_hash": "",
        "output_hash": "",
        "ip": "10.0.0.5",
        "user_agent": "",
        "diff": {"version": {"from": index, "to": index + 1}, "note": "naïve — ok"},
        "decision_id": "",
        "trace_id": "",
        "producer": "keyvault",
        "outcome": 1,
    }


def public_jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kid": kid,
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
    }


def sign(
    key: Ed25519PrivateKey, size: int, root: bytes, previous: tuple[int, bytes], kid: str = KID
) -> Checkpoint:
    note = checkpoint_note(ORG, size, root, SEALED, *previous)
    return Checkpoint(ORG, size, root, SEALED, previous[0], previous[1], kid, key.sign(note))


KEY = Ed25519PrivateKey.generate()
RECORDS = [record(i) for i in range(SIZE)]
HASHES = [merkle.leaf_hash(leaf_bytes(r)) for r in RECORDS]
ROOT_21 = merkle.root_from_leaves(HASHES[:21])
CHECKPOINTS = [
    sign(KEY, 21, ROOT_21, (0, merkle.EMPTY_ROOT)),
    sign(KEY, SIZE, merkle.root_from_leaves(HASHES), (21, ROOT_21)),
]
JWKS = [public_jwk(KEY, KID)]


def complement(lo: int, hi: int, size: int) -> list[tuple[int, int, bytes]]:
    return [
        (a, b, merkle.root_from_leaves(HASHES[a:b]))
        for a, b in merkle.complement_plan(lo, hi, size)
    ]


def bundle(lo: int = 5, hi: int = 17, checkpoints: list[Checkpoint] | None = None) -> bytes:
    checkpoints = CHECKPOINTS if checkpoints is None else checkpoints
    size = max(c.tree_size for c in checkpoints)
    out = io.BytesIO()
    written = write_bundle(
        out,
        ORG,
        lo,
        hi,
        (dict(r) for r in RECORDS[lo:hi]),
        checkpoints,
        JWKS,
        complement(lo, hi, size),
    )
    assert written == hi - lo
    return out.getvalue()


def lines(data: bytes) -> list[bytes]:
    text = gzip.decompress(data)
    assert text.endswith(b"\n")
    return text[:-1].split(b"\n")


def packed(parts: list[bytes]) -> bytes:
    return gzip.compress(b"".join(p + b"\n" for p in parts))


def check(data: bytes, **options: Any) -> Report:
    return verify_bundle(io.BytesIO(data), **options)


def kinds(report: Report) -> list[tuple[str, int | None]]:
    return [(f.kind, f.index) for f in report.findings]


# --- the format ----------------------------------------------------------------------------------


def test_l2_bundle_lines_are_header_leaf_data_and_trailers() -> None:
    parts = lines(bundle(5, 17))
    assert json.loads(parts[0]) == {
        "format": FORMAT,
        "org_id": ORG,
        "range": [5, 17],
        "tree_size": 40,
    }
    assert parts[1:13] == [leaf_bytes(r) for r in RECORDS[5:17]]
    trailers = [json.loads(p) for p in parts[13:]]
    assert [next(iter(t)) for t in trailers] == ["checkpoint", "checkpoint", "jwks", "complement"]
    assert checkpoint_from_json(trailers[1]["checkpoint"]) == CHECKPOINTS[1]
    assert trailers[2]["jwks"] == JWKS
    assert trailers[3]["complement"] == [
        [a, b, base64.b64encode(h).decode()] for a, b, h in complement(5, 17, 40)
    ]


def test_l2_checkpoint_json_round_trips() -> None:
    for checkpoint in CHECKPOINTS:
        assert (
            checkpoint_from_json(json.loads(json.dumps(checkpoint_to_json(checkpoint))))
            == checkpoint
        )
    with pytest.raises((KeyError, TypeError, ValueError)):
        checkpoint_from_json({**checkpoint_to_json(CHECKPOINTS[0]), "tree_size": "21"})


def test_l2_writer_refuses_what_would_not_verify() -> None:
    out = io.BytesIO()
    with pytest.raises(ValueError, match="complement"):
        write_bundle(out, ORG, 5, 17, RECORDS[5:17], CHECKPOINTS, JWKS, complement(5, 18, 40))
    with pytest.raises(ValueError, match="not leaf 6"):
        write_bundle(
            out, ORG, 5, 17, [RECORDS[5], RECORDS[7]], CHECKPOINTS, JWKS, complement(5, 17, 40)
        )
    with pytest.raises(ValueError, match="11 records"):
        write_bundle(out, ORG, 5, 17, RECORDS[5:16], CHECKPOINTS, JWKS, complement(5, 17, 40))
    with pytest.raises(ValueError, match="checkpoint"):
        write_bundle(out, ORG, 5, 17, RECORDS[5:17], [], JWKS, [])
    with pytest.raises(ValueError, match="not a non-empty slice"):
        write_bundle(out, ORG, 5, 41, RECORDS[5:], CHECKPOINTS, JWKS, [])


# --- untouched bundles -------------------------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi"), [(0, 40), (0, 1), (39, 40), (5, 17), (16, 32), (21, 40)])
def test_l2_untouched_bundle_verifies(lo: int, hi: int) -> None:
    report = check(bundle(lo, hi))
    assert report.ok, report.findings
    assert (report.org_id, report.start, report.size, report.leaves_read) == (ORG, lo, hi, hi - lo)
    assert report.checkpoints_verified == 2


def test_l2_every_slice_of_a_small_tree_verifies() -> None:
    """All 1 <= lo < hi <= 13 against a checkpoint of size 13: the complement and the slice
    rebuild the root whatever the shape."""
    size = 13
    only = [sign(KEY, size, merkle.root_from_leaves(HASHES[:size]), (0, merkle.EMPTY_ROOT))]
    for lo in range(size):
        for hi in range(lo + 1, size + 1):
            out = io.BytesIO()
            write_bundle(out, ORG, lo, hi, RECORDS[lo:hi], only, JWKS, complement(lo, hi, size))
            report = check(out.getvalue())
            assert report.ok, (lo, hi, report.findings)


def test_l2_pinned_keys_verify_the_bundle() -> None:
    assert check(bundle(), keys=keys_from_jwks(JWKS)).ok


def test_l2_progress_is_reported_per_event() -> None:
    seen: list[tuple[int, int]] = []
    check(bundle(5, 17), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(n, 12) for n in range(1, 13)]


# --- streamed bundles: several gzip members ------------------------------------------------------


def streamed(lo: int, hi: int, per_member: int) -> list[bytes]:
    """The bundle of [lo, hi) as an export streams it: gzip members of `per_member` events, the
    first with the header, the last with the trailers."""
    events = [event_line(r) for r in RECORDS[lo:hi]]
    members = [events[i : i + per_member] for i in range(0, len(events), per_member)]
    members[0].insert(0, header_line(ORG, lo, hi, SIZE))
    members[-1] += trailer_lines(CHECKPOINTS, JWKS, complement(lo, hi, SIZE))
    return [gzip_member(m) for m in members]


def test_l2_streamed_pieces_are_the_lines_of_write_bundle() -> None:
    """header_line, event_line and trailer_lines give exactly the lines write_bundle writes."""
    members = streamed(5, 17, 5)
    assert len(members) == 3
    assert gzip.decompress(b"".join(members)) == gzip.decompress(bundle(5, 17))
    with pytest.raises(ValueError, match="not a non-empty slice"):
        header_line(ORG, 17, 17, SIZE)


@pytest.mark.parametrize("per_member", [1, 3, 7, 12])
def test_l2_bundle_of_concatenated_gzip_members_verifies(per_member: int) -> None:
    """A bundle may be several gzip members back to back (what a resumed export concatenates):
    verify_bundle reads them as one stream of lines."""
    report = check(b"".join(streamed(5, 17, per_member)))
    assert report.ok, report.findings
    assert (report.start, report.size, report.leaves_read) == (5, 17, 12)
    assert report.checkpoints_verified == 2


def test_l2_member_boundary_inside_a_line_still_verifies() -> None:
    """Members split anywhere, even inside a line, read back as the same lines."""
    text = gzip.decompress(bundle(5, 17))
    cuts = [0, 1, 37, len(text) // 2, len(text) - 3, len(text)]
    members = [gzip.compress(text[a:b]) for a, b in itertools.pairwise(cuts)]
    assert check(b"".join(members)).ok


def test_l2_repeated_or_damaged_member_fails() -> None:
    """A member received twice (a resumption that went back too far) and bytes after the last
    member that are no gzip member both fail the bundle."""
    first, second, third = streamed(5, 17, 5)
    assert kinds(check(first + second + second + third))[0] == ("unexpected", 10)
    assert kinds(check(first + third))[0] == ("missing", 10)
    garbage = check(first + second + third + b"trailing garbage")
    assert not garbage.ok
    assert garbage.findings[0].kind == "truncated"


# --- modified bundles --------------------------------------------------------------------------


def _edit(data: bytes, change: Callable[[list[bytes]], None]) -> bytes:
    parts = lines(data)
    change(parts)
    return packed(parts)


def test_l2_changed_field_fails_against_the_signed_root() -> None:
    """A field changed and the line kept canonical: only the root catches it, so the first bad
    index is the start of the slice."""

    def change(parts: list[bytes]) -> None:
        parts[4] = parts[4].replace(b'"ip":"10.0.0.5"', b'"ip":"10.0.0.6"')

    report = check(_edit(bundle(5, 17), change))
    assert kinds(report) == [("checkpoint_root", 5)]
    assert report.first_bad_index == 5
    assert report.checkpoints_verified == 1


def test_l2_hand_edited_line_is_localised() -> None:
    """An edit that leaves the line not canonical (as editors do) names its index."""

    def change(parts: list[bytes]) -> None:
        parts[4] = parts[4].replace(b'"ip":"10.0.0.5"', b'"ip": "10.0.0.9"')

    report = check(_edit(bundle(5, 17), change))
    assert kinds(report) == [("altered", 8), ("checkpoint_root", 8)]
    assert report.findings[0].detail == "the line is not the canonical leaf data"
    assert report.first_bad_index == 8


def test_l2_garbled_line_is_altered() -> None:
    def change(parts: list[bytes]) -> None:
        parts[2] = b"\xff not json"

    report = check(_edit(bundle(5, 17), change))
    assert kinds(report) == [("altered", 6), ("checkpoint_root", 6)]


def test_l2_removed_line_is_missing() -> None:
    def change(parts: list[bytes]) -> None:
        del parts[6]  # index 10

    report = check(_edit(bundle(5, 17), change))
    assert kinds(report) == [("missing", 10)]
    assert report.first_bad_index == 10


def test_l2_swapped_lines_are_out_of_order() -> None:
    def change(parts: list[bytes]) -> None:
        parts[3], parts[4] = parts[4], parts[3]  # indexes 7 and 8

    report = check(_edit(bundle(5, 17), change))
    assert kinds(report) == [("missing", 7), ("unexpected", 7)]
    assert report.first_bad_index == 7


def test_l2_removed_last_events_are_truncation() -> None:
    def change(parts: list[bytes]) -> None:
        del parts[11:13]  # indexes 15 and 16

    report = check(_edit(bundle(5, 17), change))
    assert kinds(report) == [("truncated", 15)]


def test_l2_event_outside_the_range_is_unexpected() -> None:
    def change(parts: list[bytes]) -> None:
        parts.insert(13, leaf_bytes(RECORDS[17]))

    report = check(_edit(bundle(5, 17), change))
    assert kinds(report) == [("unexpected", 17)]


def test_l2_forged_checkpoint_fails_its_signature() -> None:
    """The anchor's root replaced by the root of the edited slice: its signature no longer
    verifies, so nothing vouches for the slice; no leaf can be named."""

    def change(parts: list[bytes]) -> None:
        anchor = json.loads(parts[14])
        anchor["checkpoint"]["root_hash"] = base64.b64encode(bytes(32)).decode()
        parts[14] = json.dumps(anchor).encode()

    report = check(_edit(bundle(5, 17), change))
    assert kinds(report) == [("checkpoint_signature", None), ("checkpoint_root", None)]
    assert "no signed checkpoint of size 40" in report.findings[1].detail
    assert not report.ok
    assert report.first_bad_index is None


def test_l2_resigned_bundle_passes_only_with_its_own_keys() -> None:
    """A forger with a key of their own rewrites an event, re-signs the checkpoints and swaps
    the jwks: consistent in itself, refused once the trusted keys are pinned."""
    forger = Ed25519PrivateKey.generate()
    records = [dict(r) for r in RECORDS]
    records[9]["action"] = "keyvault.key.export"
    hashes = [merkle.leaf_hash(leaf_bytes(r)) for r in records]
    root_21 = merkle.root_from_leaves(hashes[:21])
    forged = [
        sign(forger, 21, root_21, (0, merkle.EMPTY_ROOT)),
        sign(forger, SIZE, merkle.root_from_leaves(hashes), (21, root_21)),
    ]
    plan = merkle.complement_plan(5, 17, SIZE)
    out = io.BytesIO()
    write_bundle(
        out,
        ORG,
        5,
        17,
        records[5:17],
        forged,
        [public_jwk(forger, KID)],
        [(a, b, merkle.root_from_leaves(hashes[a:b])) for a, b in plan],
    )
    assert check(out.getvalue()).ok
    pinned = check(out.getvalue(), keys=keys_from_jwks(JWKS))
    assert [f.kind for f in pinned.findings] == ["checkpoint_signature"] * 2 + ["checkpoint_root"]


def test_l2_tampered_complement_fails_the_root() -> None:
    def change(parts: list[bytes]) -> None:
        trailer = json.loads(parts[-1])
        trailer["complement"][0][2] = base64.b64encode(bytes(32)).decode()
        parts[-1] = json.dumps(trailer).encode()

    assert kinds(check(_edit(bundle(5, 17), change))) == [("checkpoint_root", 5)]

    def drop(parts: list[bytes]) -> None:
        trailer = json.loads(parts[-1])
        del trailer["complement"][0]
        parts[-1] = json.dumps(trailer).encode()

    assert kinds(check(_edit(bundle(5, 17), drop))) == [("checkpoint_root", None)]


def test_l2_cut_file_is_truncation() -> None:
    data = bundle(5, 17)
    without_trailers = packed(lines(data)[:10])  # header and indexes 5..13
    report = check(without_trailers)
    assert kinds(report)[0] == ("truncated", 14)
    cut_bytes = check(data[: len(data) // 2])
    assert not cut_bytes.ok
    assert cut_bytes.findings[0].kind == "truncated"


def test_l2_not_a_bundle_is_an_error() -> None:
    with pytest.raises(BundleError, match="not a gzip file"):
        check(b"plain text\n")
    with pytest.raises(BundleError, match="empty"):
        check(gzip.compress(b""))
    with pytest.raises(BundleError, match="header"):
        check(packed([b'{"format":"something-else"}']))
    with pytest.raises(BundleError, match="range"):
        check(
            packed(
                [
                    json.dumps(
                        {"format": FORMAT, "org_id": ORG, "range": [5, 50], "tree_size": 40}
                    ).encode()
                ]
            )
        )
