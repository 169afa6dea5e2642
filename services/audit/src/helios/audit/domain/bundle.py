"""Export bundles (L2): a slice of an org's log that verifies offline against a signed checkpoint.

A bundle is a gzip'd JSON-lines file (one gzip member or several concatenated, as a streamed
export sends them; readers see one stream of lines):

1. a header `{"format": "helios-audit-bundle/v1", "org_id", "range": [lo, hi], "tree_size"}`;
2. one line per event of the slice, in index order, each EXACTLY the leaf data
   (`leaf_bytes` of the record), so its leaf hash is SHA-256(0x00 || line);
3. trailers: one `{"checkpoint": {...}}` per checkpoint (roots and signature in base64, the one
   of size `tree_size` being the anchor), `{"jwks": [...]}` (the public keys, by kid), and
   `{"complement": [[lo, hi, base64 MTH], ...]}`: the hashes of `merkle.complement_plan`, which
   with the slice's leaves rebuild the anchor's root (`merkle.root_from_slice`).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from helios.audit.domain import merkle
from helios.audit.domain.checkpoint import Checkpoint
from helios.audit.domain.leaf import leaf_bytes, timestamp
from helios.audit.domain.verification import (
    MAX_FINDINGS,
    Findings,
    Report,
    checked_checkpoints,
    keys_from_jwks,
)

__all__ = [
    "FORMAT",
    "BundleError",
    "checkpoint_from_json",
    "checkpoint_to_json",
    "event_line",
    "gzip_member",
    "header_line",
    "trailer_lines",
    "verify_bundle",
    "write_bundle",
]

FORMAT = "helios-audit-bundle/v1"
_TRAILERS = frozenset({"checkpoint", "jwks", "complement"})
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class BundleError(ValueError):
    """The file is not a helios audit bundle: not gzip, or no readable header."""


def _json_line(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("expected a base64 string")
    return base64.b64decode(value, validate=True)


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def checkpoint_to_json(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint as a JSON object: hashes and signature in base64, `sealed_at` as the note
    spells it (so the signature verifies after a round trip)."""
    return {
        "org_id": checkpoint.org_id,
        "tree_size": checkpoint.tree_size,
        "root_hash": _b64(checkpoint.root_hash),
        "sealed_at": timestamp(checkpoint.sealed_at),
        "previous_size": checkpoint.previous_size,
        "previous_root_hash": _b64(checkpoint.previous_root_hash),
        "key_id": checkpoint.key_id,
        "signature": _b64(checkpoint.signature),
    }


def checkpoint_from_json(value: Any) -> Checkpoint:
    """The checkpoint of `checkpoint_to_json`; ValueError (or TypeError, KeyError) when a field
    is missing or malformed."""
    if not isinstance(value, dict):
        raise TypeError("a checkpoint is a JSON object")
    sealed = dt.datetime.strptime(_text(value["sealed_at"]), _TIME_FORMAT).replace(tzinfo=dt.UTC)
    return Checkpoint(
        org_id=_text(value["org_id"]),
        tree_size=_integer(value["tree_size"]),
        root_hash=_unb64(value["root_hash"]),
        sealed_at=sealed,
        previous_size=_integer(value["previous_size"]),
        previous_root_hash=_unb64(value["previous_root_hash"]),
        key_id=_text(value["key_id"]),
        signature=_unb64(value["signature"]),
    )


def header_line(org_id: str, lo: int, hi: int, tree_size: int) -> bytes:
    """The bundle's first line (with its newline): the slice [lo, hi) of `org_id`'s log,
    checked against the anchor checkpoint of `tree_size` leaves; ValueError unless
    0 <= lo < hi <= tree_size."""
    if not 0 <= lo < hi <= tree_size:
        raise ValueError(f"[{lo}, {hi}) is not a non-empty slice of a tree of size {tree_size}")
    header = {"format": FORMAT, "org_id": org_id, "range": [lo, hi], "tree_size": tree_size}
    return _json_line(header) + b"\n"


def event_line(record: Mapping[str, Any]) -> bytes:
    """One event line (with its newline): exactly the leaf data of `record` (a leaf record as
    `leaf_bytes` takes it), so its leaf hash is SHA-256(0x00 || line without the newline)."""
    return leaf_bytes(record) + b"\n"


def trailer_lines(
    checkpoints: Iterable[Checkpoint],
    jwks: Iterable[Mapping[str, str]],
    complement: Iterable[tuple[int, int, bytes]],
) -> list[bytes]:
    """The trailer lines (each with its newline): one per checkpoint by size, the JWKs, then the
    complement hashes (lo, hi, MTH) in the order given (`merkle.complement_plan`'s)."""
    lines = [
        _json_line({"checkpoint": checkpoint_to_json(checkpoint)}) + b"\n"
        for checkpoint in sorted(checkpoints, key=lambda c: c.tree_size)
    ]
    lines.append(_json_line({"jwks": [dict(jwk) for jwk in jwks]}) + b"\n")
    hashes = [[a, b, _b64(value)] for a, b, value in complement]
    lines.append(_json_line({"complement": hashes}) + b"\n")
    return lines


def gzip_member(lines: Iterable[bytes]) -> bytes:
    """`lines` as one gzip member (mtime 0, so equal lines give equal bytes). A bundle may be
    any concatenation of members (RFC 1952 2.2): readers see one stream of lines."""
    return gzip.compress(b"".join(lines), mtime=0)


def write_bundle(
    out: IO[bytes],
    org_id: str,
    lo: int,
    hi: int,
    records: Iterable[Mapping[str, Any]],
    checkpoints: Sequence[Checkpoint],
    jwks: Sequence[Mapping[str, str]],
    complement: Sequence[tuple[int, int, bytes]],
) -> int:
    """Write the bundle of leaves lo..hi-1 of `org_id`'s log to `out` (gzip'd, one member);
    returns the number of events. The latest of `checkpoints` is the anchor (`tree_size`);
    `complement` are the (lo, hi, MTH) of `merkle.complement_plan(lo, hi, tree_size)`, in that
    order; `records` are the leaf records of indexes lo..hi-1, in order. ValueError when any of
    these does not hold (nothing is then usable in `out`). Built from header_line, event_line
    and trailer_lines, as a streamed export is."""
    if not checkpoints:
        raise ValueError("a bundle needs the checkpoint its slice is checked against")
    size = max(c.tree_size for c in checkpoints)
    plan = merkle.complement_plan(lo, hi, size)
    if [(a, b) for a, b, _ in complement] != plan:
        raise ValueError(f"the complement must be the hashes of {plan}, in that order")
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped:
        zipped.write(header_line(org_id, lo, hi, size))
        expected = lo
        for record in records:
            if record.get("index") != expected or record.get("org_id") != org_id:
                raise ValueError(f"record #{expected - lo} is not leaf {expected} of {org_id!r}")
            zipped.write(event_line(record))
            expected += 1
        if expected != hi:
            raise ValueError(f"{expected - lo} records for the slice [{lo}, {hi})")
        zipped.writelines(trailer_lines(checkpoints, jwks, complement))
    return hi - lo


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2), where RFC 9162 2.1.1 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def _inner_plan(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """The maximal ranges of RFC 9162 2.1.1's recursion over [0, size) lying wholly inside
    [lo, hi), left to right (they partition the slice; complement_plan gives the rest)."""
    plan: list[tuple[int, int]] = []
    pending = [(0, size)]
    while pending:
        start, end = pending.pop()
        if end <= lo or start >= hi:
            continue
        if lo <= start and end <= hi:
            plan.append((start, end))
        else:
            mid = start + _split(end - start)
            pending += [(mid, end), (start, mid)]
    return plan


def _root(size: int, known: Mapping[tuple[int, int], bytes]) -> bytes:
    """MTH(D[size]) from the MTHs of ranges of the recursion that partition [0, size); the same
    value as merkle.root_from_slice, with the slice's leaves already folded into its inner ranges
    (so a verifier never holds the slice). KeyError naming a missing range."""

    def subtree(start: int, end: int) -> bytes:
        value = known.get((start, end))
        if value is not None:
            return value
        if end - start < 2:
            raise KeyError((start, end))
        mid = start + _split(end - start)
        return merkle.node_hash(subtree(start, mid), subtree(mid, end))

    return subtree(0, size)


class _Header:
    __slots__ = ("hi", "lo", "org_id", "size")

    def __init__(self, line: bytes) -> None:
        try:
            value = json.loads(line)
            if not isinstance(value, dict) or value.get("format") != FORMAT:
                raise BundleError(f"the first line is not a {FORMAT} header")
            self.org_id = _text(value["org_id"])
            lo, hi = value["range"]
            self.lo, self.hi = _integer(lo), _integer(hi)
            self.size = _integer(value["tree_size"])
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"unreadable bundle header: {exc}") from None
        if not 0 <= self.lo < self.hi <= self.size:
            raise BundleError(f"the header's range [{self.lo}, {self.hi}) is not in its tree")


def _lines(source: IO[bytes]) -> Iterator[bytes]:
    """The bundle's lines without their newline, read across every gzip member (GzipFile reads
    concatenated members as one stream, a line may even span two); BundleError when it is not
    gzip at all, and EOFError (or zlib.error, or OSError for bytes after a member that are not
    another one) when its compressed data stops short or is damaged later."""
    zipped = gzip.GzipFile(fileobj=source, mode="rb")
    with zipped:
        try:
            first = zipped.readline()
        except (OSError, EOFError, zlib.error) as exc:
            raise BundleError(f"not a gzip file: {exc}") from None
        if not first:
            raise BundleError("the bundle is empty")
        yield first.removesuffix(b"\n")
        for line in zipped:
            yield line.removesuffix(b"\n")


class _BundleCheck:
    """The checks of verify_bundle, in the order the lines come."""

    def __init__(
        self,
        header: _Header,
        keys: Mapping[str, Ed25519PublicKey] | None,
        max_findings: int,
    ) -> None:
        self.header = header
        self.keys = keys
        self.findings = Findings(max_findings)
        self.expected = header.lo
        self.leaves = 0
        self.broken = False
        self.first_altered: int | None = None
        self.inner = _inner_plan(header.lo, header.hi, header.size)
        self.inner_done: dict[tuple[int, int], bytes] = {}
        self.stream = merkle.StreamingRoot()
        self.checkpoints: list[Checkpoint] = []
        self.jwks: list[Any] | None = None
        self.complement: dict[tuple[int, int], bytes] | None = None

    # --- events ------------------------------------------------------------------------------

    def event(self, line: bytes, record: Any) -> None:
        self.leaves += 1
        index = self.expected
        if isinstance(record, dict) and isinstance(record.get("index"), int):
            index = record["index"]
        if index >= self.header.hi or index < self.expected:
            where = "outside the bundle's range" if index >= self.header.hi else "out of order"
            self.findings.add("unexpected", index, f"an event line for index {index}, {where}")
            return
        if index > self.expected:
            start = self.expected
            what = f"leaf {start} is" if index - start == 1 else f"leaves {start}..{index - 1} are"
            self.findings.add("missing", start, f"{what} missing")
            self.broken = True
        problem = self._problem(line, record)
        if problem:
            self.findings.add("altered", index, problem)
            if self.first_altered is None:
                self.first_altered = index
        self.expected = index + 1
        if not self.broken:
            self._add_leaf(merkle.leaf_hash(line))

    def _problem(self, line: bytes, record: Any) -> str:
        if not isinstance(record, dict):
            return "the line is not a JSON object"
        try:
            canonical = leaf_bytes(record)
        except (KeyError, TypeError, ValueError) as exc:
            return f"not a leaf record ({exc})"
        if canonical != line:
            return "the line is not the canonical leaf data"
        if record.get("org_id") != self.header.org_id:
            return f"the event is of org {record.get('org_id')!r}"
        return ""

    def _add_leaf(self, leaf: bytes) -> None:
        start, end = self.inner[len(self.inner_done)]
        self.stream.add(leaf)
        if self.stream.size == end - start:
            self.inner_done[(start, end)] = self.stream.root()
            self.stream = merkle.StreamingRoot()

    def cut(self, reason: str) -> None:
        """The file ends early: the events from `expected` on (if any) and the trailers are
        gone, or it is damaged from there."""
        index = self.expected if self.expected < self.header.hi else None
        self.findings.add("truncated", index, reason)
        self.broken = True

    # --- trailers ----------------------------------------------------------------------------

    def trailer(self, value: dict[str, Any]) -> None:
        ((name, body),) = value.items()
        if name == "checkpoint":
            try:
                self.checkpoints.append(checkpoint_from_json(body))
            except (KeyError, TypeError, ValueError) as exc:
                self.findings.add("checkpoint_signature", None, f"unreadable checkpoint: {exc}")
        elif name == "jwks":
            self.jwks = body if isinstance(body, list) else []
        else:
            try:
                self.complement = {(_integer(a), _integer(b)): _unb64(h) for a, b, h in body}
            except (TypeError, ValueError) as exc:
                self.findings.add("checkpoint_root", None, f"unreadable complement: {exc}")

    def finish(self) -> Report:
        header = self.header
        if self.expected < header.hi and not self.broken:
            self.cut(f"the bundle ends at index {self.expected}; its range ends at {header.hi}")
        keys = self.keys
        if keys is None:
            try:
                keys = keys_from_jwks(self.jwks or [])
            except ValueError as exc:
                self.findings.add("checkpoint_signature", None, f"unusable jwks: {exc}")
                keys = {}
        trusted = checked_checkpoints(
            header.org_id, self.checkpoints, keys, self.findings, complete=False
        )
        anchor = next((c for c in trusted if c.tree_size == header.size), None)
        if anchor is None:
            self.findings.add(
                "checkpoint_root", None, f"no signed checkpoint of size {header.size}"
            )
        # every signed checkpoint counts; the anchor only if the slice rebuilds its root
        verified = len(trusted)
        if anchor is not None and (self.broken or not self._root_matches(anchor)):
            verified -= 1
        return Report(
            org_id=header.org_id,
            leaves_read=self.leaves,
            checkpoints_verified=verified,
            ok=not self.findings,
            first_bad_index=self.findings.first_bad_index,
            findings=self.findings.kept,
            findings_omitted=self.findings.omitted,
            start=header.lo,
            size=self.expected,
        )

    def _root_matches(self, anchor: Checkpoint) -> bool:
        """Whether the slice and the complement rebuild the anchor's root (else a finding)."""
        header = self.header
        plan = merkle.complement_plan(header.lo, header.hi, header.size)
        complement = self.complement or {}
        absent = [r for r in plan if r not in complement]
        if absent or len(complement) != len(plan):
            self.findings.add(
                "checkpoint_root",
                None,
                f"the complement does not hold exactly the hashes of {plan}",
            )
            return False
        if _root(header.size, {**complement, **self.inner_done}) == anchor.root_hash:
            return True
        index = self.first_altered if self.first_altered is not None else header.lo
        self.findings.add(
            "checkpoint_root",
            index,
            f"the slice [{header.lo}, {header.hi}) with the complement does not rebuild the "
            f"signed root of size {header.size}",
        )
        return False


def _parsed(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return None


def _is_trailer(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TRAILERS


def verify_bundle(
    source: IO[bytes],
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    max_findings: int = MAX_FINDINGS,
) -> Report:
    """Verify a bundle with no database: every event line is canonical leaf data of the
    header's org, indexes run lo, lo+1, ... hi-1, the checkpoints are signed by `keys` (by kid;
    None takes the bundle's own `jwks`, which proves integrity only if the bundle came from a
    trusted source: pin the keys to prove origin), and the slice with the complement rebuilds
    the anchor checkpoint's root. Findings localise what they can (a non-canonical line, a
    removed line, a swapped pair); a field changed but kept canonical shows only as the slice
    not matching the root, at `lo`. `progress(events read, events expected)` is called after
    every event line. BundleError when `source` is not a bundle at all."""
    lines = _lines(source)
    check = _BundleCheck(_Header(next(lines)), keys, max_findings)
    in_trailers = False
    total = check.header.hi - check.header.lo
    try:
        for number, line in enumerate(lines, start=2):
            value = _parsed(line)
            if _is_trailer(value):
                in_trailers = True
                check.trailer(value)
            elif in_trailers:
                check.findings.add("unexpected", None, f"line {number} follows the trailers")
            else:
                check.event(line, value)
                if progress is not None:
                    progress(check.leaves, total)
    except (EOFError, zlib.error, OSError) as exc:
        check.cut(f"the compressed data is cut short or damaged ({exc})")
    if not in_trailers and not check.broken:
        check.cut("the bundle has no trailers")
    return check.finish()
