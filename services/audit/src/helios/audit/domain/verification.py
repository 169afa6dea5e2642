"""Verifying an org's log: every leaf re-hashed from its record, the root rebuilt and compared
with the signed checkpoints; what was changed (L1), and from which index."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from helios.audit.domain import merkle
from helios.audit.domain.checkpoint import Checkpoint, public_key_from_jwk, signature_valid
from helios.audit.domain.leaf import leaf_bytes

__all__ = [
    "MAX_FINDINGS",
    "Finding",
    "FindingKind",
    "Findings",
    "LogVerifier",
    "Report",
    "checked_checkpoints",
    "keys_from_jwks",
]

FindingKind = Literal[
    "altered",
    "missing",
    "unexpected",
    "truncated",
    "checkpoint_root",
    "checkpoint_signature",
    "checkpoint_chain",
]

MAX_FINDINGS = 1000
"""Findings kept in a report; beyond it they are only counted (a rewritten log would otherwise
yield one finding per leaf)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One way the log differs from what was signed. `index` is the first leaf concerned, None
    when it cannot be localised (a checkpoint's own signature or chain)."""

    kind: FindingKind
    index: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of verifying one org's log (or one export bundle).

    `start` is the first index checked (0 for a whole log, a bundle's `lo`); `size` is where
    the checked indexes ended (leaves read plus purged ranges); `first_bad_index` is the first
    index where the log stops matching (None when ok, or when no finding can be localised)."""

    org_id: str
    leaves_read: int
    checkpoints_verified: int
    ok: bool
    first_bad_index: int | None
    findings: tuple[Finding, ...]
    findings_omitted: int = 0
    start: int = 0
    size: int = 0
    purged: tuple[tuple[int, int], ...] = ()


class Findings:
    """Findings in the order they were found: the first MAX_FINDINGS kept, the rest counted;
    the lowest localised index tracked over all of them."""

    def __init__(self, limit: int = MAX_FINDINGS) -> None:
        self._kept: list[Finding] = []
        self._limit = limit
        self.omitted = 0
        self.first_bad_index: int | None = None

    def add(self, kind: FindingKind, index: int | None, detail: str) -> None:
        """Record one finding."""
        if index is not None and (self.first_bad_index is None or index < self.first_bad_index):
            self.first_bad_index = index
        if len(self._kept) < self._limit:
            self._kept.append(Finding(kind, index, detail))
        else:
            self.omitted += 1

    def __bool__(self) -> bool:
        return bool(self._kept) or self.omitted > 0

    @property
    def kept(self) -> tuple[Finding, ...]:
        """The findings kept, in the order they were found."""
        return tuple(self._kept)


def keys_from_jwks(jwks: Iterable[Mapping[str, str]]) -> dict[str, Ed25519PublicKey]:
    """Checkpoint verification keys by kid from JWKs; ValueError naming the first JWK without a
    kid or that is not an Ed25519 public key."""
    keys: dict[str, Ed25519PublicKey] = {}
    for number, jwk in enumerate(jwks):
        if not isinstance(jwk, Mapping) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            raise ValueError(f"JWK #{number} has no kid")
        try:
            keys[jwk["kid"]] = public_key_from_jwk(jwk)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"JWK {jwk['kid']!r} is not an Ed25519 public key: {exc}") from None
    return keys


def _starts_log(checkpoint: Checkpoint) -> bool:
    """Whether the checkpoint is an org's first: it chains to the empty log (as sealed)."""
    return checkpoint.previous_size == 0 and checkpoint.previous_root_hash == merkle.EMPTY_ROOT


def checked_checkpoints(
    org_id: str,
    checkpoints: Iterable[Checkpoint],
    keys: Mapping[str, Ed25519PublicKey],
    findings: Findings,
    *,
    complete: bool,
) -> list[Checkpoint]:
    """The checkpoints signed for `org_id` by a key of `keys` (by kid), by size; every other
    one is a `checkpoint_signature` finding. Among the signed ones, each must chain to the one
    before it (its previous size and root), else a `checkpoint_chain` finding; with `complete`
    (all of the org's checkpoints are given) the first must also chain to the empty log, so a
    deleted checkpoint shows. Neither kind names an index: they say nothing of the leaves."""
    trusted: list[Checkpoint] = []
    for checkpoint in sorted(checkpoints, key=lambda c: c.tree_size):
        name = f"checkpoint of size {checkpoint.tree_size}"
        if checkpoint.org_id != org_id:
            findings.add("checkpoint_signature", None, f"{name} is for org {checkpoint.org_id!r}")
        elif checkpoint.key_id not in keys:
            detail = f"{name}: no public key with kid {checkpoint.key_id!r}"
            findings.add("checkpoint_signature", None, detail)
        elif not signature_valid(checkpoint, keys):
            findings.add(
                "checkpoint_signature",
                None,
                f"{name}: the signature does not verify with key {checkpoint.key_id!r}",
            )
        else:
            trusted.append(checkpoint)
    chained: list[Checkpoint] = []
    for checkpoint in trusted:
        name = f"checkpoint of size {checkpoint.tree_size}"
        before = chained[-1] if chained else None
        if before is not None and before.tree_size == checkpoint.tree_size:
            if before.root_hash != checkpoint.root_hash:
                findings.add(
                    "checkpoint_chain",
                    None,
                    f"two signed checkpoints of size {checkpoint.tree_size} have different roots",
                )
            continue
        if checkpoint.previous_size > checkpoint.tree_size:
            findings.add(
                "checkpoint_chain",
                None,
                f"{name} claims a larger previous size {checkpoint.previous_size}",
            )
        elif before is None:
            if complete and not _starts_log(checkpoint):
                findings.add(
                    "checkpoint_chain",
                    None,
                    f"the first checkpoint (size {checkpoint.tree_size}) chains to size "
                    f"{checkpoint.previous_size}: an earlier checkpoint is missing",
                )
        elif (checkpoint.previous_size, checkpoint.previous_root_hash) != (
            before.tree_size,
            before.root_hash,
        ) and (complete or checkpoint.previous_size <= before.tree_size):
            findings.add(
                "checkpoint_chain",
                None,
                f"{name} chains to size {checkpoint.previous_size}, not to the checkpoint "
                f"before it (size {before.tree_size})",
            )
        chained.append(checkpoint)
    return chained


def _purge_level(lo: int, hi: int) -> int:
    width = hi - lo
    if lo < 0 or width <= 0 or width & (width - 1) or lo % width:
        raise ValueError(f"purged range [{lo}, {hi}) is not a perfect aligned subtree")
    return width.bit_length() - 1


class LogVerifier:
    """Streaming verification of one org's log, fed its stored rows in stored order.

    Each leaf hash is recomputed from its record (`leaf_bytes` then `merkle.leaf_hash`); a
    stored hash is never trusted, only compared, to say which leaf changed. The recomputed
    leaves rebuild the root as they stream past (O(log n) memory), and each signed checkpoint's
    root is compared when the stream reaches its size. Findings:

    - `altered` at i: leaf i's recomputed hash differs from its stored hash, or its record names
      another index or org, or is not a leaf record;
    - `missing` from i: indexes skipped (a deleted row); the root cannot be rebuilt past it;
    - `unexpected` at i: index i again, or out of order (a reordering), or inside a purged range;
    - `truncated` at n: the log ends at n leaves, short of the latest signed checkpoint (or of
      `expected_size`, the size the store records: a hint, it is not signed);
    - `checkpoint_root` at i: a signed root differs from the rebuilt one; i is the first leaf
      found bad since the last matching checkpoint if there is one, else the size of that last
      matching checkpoint (the first index it does not vouch for). Later checkpoints that differ
      too are summed up in one more finding;
    - `checkpoint_signature`, `checkpoint_chain`: see `checked_checkpoints`.

    `purged` are (lo, hi, MTH of leaves lo..hi-1) of ranges deleted by a retention policy:
    each must be a perfect aligned subtree (ValueError otherwise, or if they overlap); the
    verifier takes its hash in place of those leaves, so the root and later checkpoints still
    verify, and lists the range in the report."""

    def __init__(
        self,
        org_id: str,
        checkpoints: Iterable[Checkpoint],
        keys: Mapping[str, Ed25519PublicKey],
        *,
        purged: Sequence[tuple[int, int, bytes]] = (),
        expected_size: int | None = None,
        max_findings: int = MAX_FINDINGS,
    ) -> None:
        self._org = org_id
        self._findings = Findings(max_findings)
        self._trusted = checked_checkpoints(
            org_id, checkpoints, keys, self._findings, complete=True
        )
        self._pending = deque(self._trusted)
        self._purged: list[tuple[int, int, int, bytes]] = []
        for lo, hi, digest in sorted(purged):
            level = _purge_level(lo, hi)
            if self._purged and lo < self._purged[-1][1]:
                raise ValueError(f"purged range [{lo}, {hi}) overlaps another")
            self._purged.append((lo, hi, level, digest))
        self._next_purge = 0
        self._applied: list[tuple[int, int]] = []
        self._expected_size = expected_size
        self._root = merkle.StreamingRoot()
        self._expected = 0
        self._broken = False
        self._leaves = 0
        self._verified = 0
        self._good_size = 0
        self._suspect: int | None = None
        self._root_differs = False  # the last checkpoint reached did not match
        self._unmatched: list[int] = []
        self._report: Report | None = None
        self._check_reached()

    @property
    def leaves_read(self) -> int:
        """How many rows have been fed."""
        return self._leaves

    @property
    def latest_checkpoint_size(self) -> int:
        """The size of the latest signed checkpoint (0 if none): at least this many leaves."""
        return self._trusted[-1].tree_size if self._trusted else 0

    def feed(self, index: int, record: Mapping[str, Any], stored_hash: bytes | None) -> None:
        """The next stored row: its stored index, its leaf record (see store/rows.leaf_record)
        and its stored leaf hash (None when the source keeps none). RuntimeError after
        finish()."""
        if self._report is not None:
            raise RuntimeError("the verification is finished")
        self._leaves += 1
        self._advance_to(index)
        if index < self._expected:
            self._unexpected(index)
            return
        leaf, problems = self._leaf(index, record, stored_hash)
        if problems:
            self._flag("altered", index, "; ".join(problems))
        self._expected = index + 1
        if leaf is None:
            self._broken = True
        elif not self._broken:
            self._root.add(leaf)
            self._check_reached()

    def finish(self) -> Report:
        """The report, once every row has been fed (idempotent)."""
        if self._report is not None:
            return self._report
        while self._purge_at(self._expected) is not None:
            self._apply_purge()
        end = self._expected
        latest = self.latest_checkpoint_size
        if latest > end:
            self._flag(
                "truncated",
                end,
                f"the log ends at {end} leaves; a signed checkpoint covers {latest}",
            )
        elif self._expected_size is not None and self._expected_size > end:
            self._flag(
                "truncated",
                end,
                f"the log ends at {end} leaves; its recorded size is {self._expected_size}",
            )
        if self._unmatched:
            self._findings.add(
                "checkpoint_root",
                None,
                f"{len(self._unmatched)} later checkpoint(s), up to size {self._unmatched[-1]}, "
                "do not match the rebuilt root either",
            )
        self._report = Report(
            org_id=self._org,
            leaves_read=self._leaves,
            checkpoints_verified=self._verified,
            ok=not self._findings,
            first_bad_index=self._findings.first_bad_index,
            findings=self._findings.kept,
            findings_omitted=self._findings.omitted,
            start=0,
            size=end,
            purged=tuple(self._applied),
        )
        return self._report

    # --- the stream --------------------------------------------------------------------------

    def _flag(self, kind: FindingKind, index: int, detail: str) -> None:
        """A finding about the leaves from `index` on."""
        self._findings.add(kind, index, detail)
        if index >= self._good_size and (self._suspect is None or index < self._suspect):
            self._suspect = index

    def _purge_at(self, index: int) -> tuple[int, int, int, bytes] | None:
        if self._next_purge < len(self._purged) and self._purged[self._next_purge][0] == index:
            return self._purged[self._next_purge]
        return None

    def _apply_purge(self) -> None:
        lo, hi, level, digest = self._purged[self._next_purge]
        self._next_purge += 1
        self._applied.append((lo, hi))
        self._expected = hi
        if not self._broken:
            self._root.add_subtree(level, digest)
            self._check_reached()

    def _advance_to(self, index: int) -> None:
        """Move past purged ranges and gaps up to `index`; a gap is a `missing` finding."""
        while True:
            purge = self._purge_at(self._expected)
            if purge is not None and purge[0] <= index:
                self._apply_purge()
            elif self._expected < index:
                end = index
                if self._next_purge < len(self._purged):
                    end = min(end, self._purged[self._next_purge][0])
                start = self._expected
                what = f"leaf {start} is" if end - start == 1 else f"leaves {start}..{end - 1} are"
                self._flag("missing", start, f"{what} missing")
                self._broken = True
                self._expected = end
            else:
                return

    def _unexpected(self, index: int) -> None:
        for lo, hi, _, _ in self._purged:
            if lo <= index < hi:
                self._flag("unexpected", index, f"a row at {index}, in [{lo}, {hi}) purged")
                return
        self._flag(
            "unexpected",
            index,
            f"index {index} read after index {self._expected - 1} (repeated or out of order)",
        )

    def _leaf(
        self, index: int, record: Mapping[str, Any], stored_hash: bytes | None
    ) -> tuple[bytes | None, list[str]]:
        try:
            leaf = merkle.leaf_hash(leaf_bytes(record))
        except (KeyError, TypeError, ValueError) as exc:
            return None, [f"not a leaf record ({exc})"]
        problems: list[str] = []
        if record.get("index") != index:
            problems.append(f"the record names index {record.get('index')!r}")
        if record.get("org_id") != self._org:
            problems.append(f"the record is of org {record.get('org_id')!r}")
        if stored_hash is not None and stored_hash != leaf:
            problems.append("the recomputed leaf hash differs from the stored one")
        return leaf, problems

    def _check_reached(self) -> None:
        """Compare the signed roots of the checkpoints the stream has now reached."""
        while self._pending and self._pending[0].tree_size <= self._root.size:
            checkpoint = self._pending.popleft()
            if checkpoint.tree_size < self._root.size:
                continue  # inside a purged range: its root cannot be rebuilt
            if self._root.root() == checkpoint.root_hash:
                self._verified += 1
                self._good_size = checkpoint.tree_size
                self._suspect = None
                self._root_differs = False
            elif self._root_differs:
                self._unmatched.append(checkpoint.tree_size)
            else:
                self._root_differs = True
                index = self._suspect if self._suspect is not None else self._good_size
                self._findings.add(
                    "checkpoint_root",
                    index,
                    f"the rebuilt root at size {checkpoint.tree_size} differs from the signed "
                    f"checkpoint's (the last matching checkpoint covers {self._good_size} leaves)",
                )
