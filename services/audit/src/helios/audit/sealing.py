"""Audit's checkpoint use cases: seal signed tree heads, serve them with inclusion and
consistency proofs built from stored Merkle nodes."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from helios.audit.domain import merkle
from helios.audit.domain.access import SERVICE_CALLERS, authorize_log
from helios.audit.domain.checkpoint import Checkpoint, LogIntegrityError, checkpoint_note
from helios.audit.ports import CheckpointSigner, TreeStore
from helios.kernel.context import CallContext
from helios.kernel.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError

__all__ = ["SERVICE_CALLERS", "CheckpointService", "InclusionProof", "LogIntegrityError"]

log = logging.getLogger(__name__)

_MAX_SIZE = 2**63 - 1  # sizes are PostgreSQL bigints


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """PATH(leaf_index, D[tree_size]) of RFC 9162 2.1.3.1, deepest sibling first."""

    leaf_index: int
    tree_size: int
    audit_path: list[bytes]


def _size(value: int, field: str) -> int:
    if not 0 <= value <= _MAX_SIZE:
        raise InvalidArgumentError(f"{field} must be between 0 and {_MAX_SIZE}", field=field)
    return value


class CheckpointService:
    """Seals and serves each org's signed checkpoints.

    Who may call (every method taking a CallContext): a Helios service by its mTLS identity
    (SERVICE_CALLERS) calling without a principal, for any org; a principal only for its own
    org (domain.access.authorize_log, the rule exports share). Permission keys and grant
    scopes (audit.checkpoint.seal, audit.checkpoint.read) are not checked here: authz scoping
    of these RPCs is a later step.
    """

    def __init__(
        self,
        trees: TreeStore,
        signer: CheckpointSigner,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._trees = trees
        self._signer = signer
        self._clock = clock

    @staticmethod
    def _authorize(ctx: CallContext, org_id: str) -> None:
        """The log's access rule (domain.access.authorize_log, shared with exports)."""
        authorize_log(ctx, org_id)

    async def seal(self, ctx: CallContext, org_id: str) -> Checkpoint:
        """Seal a checkpoint of the org's log now (see _seal); FailedPreconditionError for an
        empty log."""
        self._authorize(ctx, org_id)
        return await self._seal(org_id)

    async def _seal(self, org_id: str) -> Checkpoint:
        """Under the org's seal lock: the latest checkpoint if the log did not grow since;
        otherwise the root of the current size from stored nodes, checked to extend the latest
        checkpoint (a consistency proof from the same read), signed over checkpoint_note by
        the signer and stored, chained to the latest (size 0 and EMPTY_ROOT for the first)."""
        async with self._trees.sealing(org_id) as tree:
            size = await tree.size(org_id)
            latest = await tree.checkpoint(org_id)
            previous = latest.tree_size if latest else 0
            previous_root = latest.root_hash if latest else merkle.EMPTY_ROOT
            if latest is not None and size == previous:
                return latest
            if size < previous:
                raise LogIntegrityError(
                    f"org {org_id!r}: the log has {size} leaves, its checkpoint {previous}"
                )
            if size == 0:
                raise FailedPreconditionError("the org's audit log is empty: nothing to seal")
            plan = merkle.consistency_plan(previous, size)
            root, *proof = await self._hashes(tree, org_id, [(0, size), *plan])
            if not merkle.verify_consistency(previous, size, previous_root, root, proof):
                raise LogIntegrityError(
                    f"org {org_id!r}: the stored tree of {size} leaves does not extend the"
                    f" checkpoint of {previous}; not signing it"
                )
            sealed_at = self._clock()
            note = checkpoint_note(org_id, size, root, sealed_at, previous, previous_root)
            signature, key_id = await self._signer.sign(note)
            checkpoint = Checkpoint(
                org_id=org_id,
                tree_size=size,
                root_hash=root,
                sealed_at=sealed_at,
                previous_size=previous,
                previous_root_hash=previous_root,
                key_id=key_id,
                signature=signature,
            )
            await tree.add_checkpoint(checkpoint)
        log.info("checkpoint sealed", extra={"org_id": org_id, "tree_size": size})
        return checkpoint

    async def seal_due(self, limit: int) -> int:
        """Seal up to `limit` orgs whose log grew since their latest checkpoint (the background
        sealer; any replica may run it: the seal lock serialises them per org). An org that
        fails is logged and skipped until the next pass; returns how many were sealed."""
        sealed = 0
        for org_id in await self._trees.unsealed_orgs(limit):
            try:
                await self._seal(org_id)
            except Exception as exc:
                log.warning("sealing failed", extra={"org_id": org_id, "error": repr(exc)})
            else:
                sealed += 1
        return sealed

    async def checkpoint(self, ctx: CallContext, org_id: str, tree_size: int = 0) -> Checkpoint:
        """The org's latest checkpoint (tree_size 0) or the one of `tree_size` leaves;
        NotFoundError when there is none."""
        self._authorize(ctx, org_id)
        found = await self._trees.checkpoint(org_id, _size(tree_size, "tree_size"))
        if found is None:
            raise NotFoundError(
                f"no checkpoint of {tree_size} leaves in this org's log"
                if tree_size
                else "this org's log has no checkpoint yet"
            )
        return found

    async def inclusion_proof(
        self, ctx: CallContext, org_id: str, event_id: str, tree_size: int = 0
    ) -> InclusionProof:
        """The RFC 9162 inclusion proof of the event in the tree of `tree_size` leaves (0: the
        latest checkpoint's size). Refusals: InvalidArgumentError for a malformed event id, a
        size beyond the log, or an event that is not among the first `tree_size` leaves;
        NotFoundError for an event not in this org's log; FailedPreconditionError when no
        checkpoint exists yet or (tree_size 0) the event came after the latest one."""
        self._authorize(ctx, org_id)
        try:
            uuid.UUID(event_id)
        except ValueError:
            raise InvalidArgumentError("event_id is not a UUID", field="event_id") from None
        if tree_size == 0:
            latest = await self._trees.checkpoint(org_id)
            if latest is None:
                raise FailedPreconditionError("this org's log has no checkpoint yet")
            size = latest.tree_size
        else:
            size = await self._within_log(org_id, tree_size, "tree_size")
        index = await self._trees.leaf_index(org_id, event_id)
        if index is None:
            raise NotFoundError("no such event in this org's audit log")
        if index >= size and tree_size == 0:
            raise FailedPreconditionError(
                f"the event is leaf {index}, after the latest checkpoint ({size} leaves):"
                " ask again once the next checkpoint is sealed"
            )
        if index >= size:
            raise InvalidArgumentError(
                f"the event is leaf {index}, not among the first {size} leaves",
                field="tree_size",
            )
        path = await self._hashes(self._trees, org_id, merkle.inclusion_plan(index, size))
        return InclusionProof(leaf_index=index, tree_size=size, audit_path=path)

    async def consistency_proof(
        self, ctx: CallContext, org_id: str, first: int, second: int
    ) -> list[bytes]:
        """The RFC 9162 consistency proof that the tree of `second` leaves extends the tree of
        `first` (empty when first is 0 or equal to second); InvalidArgumentError unless
        0 <= first <= second <= the log's size."""
        self._authorize(ctx, org_id)
        _size(first, "first_size")
        _size(second, "second_size")
        if first > second:
            raise InvalidArgumentError(
                "first_size must not be larger than second_size", field="first_size"
            )
        await self._within_log(org_id, second, "second_size")
        return await self._hashes(self._trees, org_id, merkle.consistency_plan(first, second))

    async def _within_log(self, org_id: str, size: int, field: str) -> int:
        """`size`, or InvalidArgumentError when the org's log has fewer leaves."""
        stored = await self._trees.size(org_id)
        if not 0 <= size <= stored:
            raise InvalidArgumentError(
                f"{field} {size} is beyond the log ({stored} leaves)", field=field
            )
        return size

    @staticmethod
    async def _hashes(
        tree: TreeStore, org_id: str, ranges: Sequence[tuple[int, int]]
    ) -> list[bytes]:
        """MTH(D[lo:hi]) of each range of the RFC 9162 recursion, from one read of the stored
        perfect subtrees they combine; LogIntegrityError when one is missing."""
        refs = {ref for lo, hi in ranges for ref in merkle.range_nodes(lo, hi)}
        nodes = await tree.nodes(org_id, refs)
        try:
            return [merkle.range_hash(lo, hi, nodes) for lo, hi in ranges]
        except KeyError as exc:
            raise LogIntegrityError(f"org {org_id!r}: Merkle node {exc} is missing") from None
