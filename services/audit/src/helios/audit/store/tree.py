"""Per-org Merkle logs in PostgreSQL: appending leaves, reading nodes, sizes and checkpoints."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Row, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.domain import merkle
from helios.audit.domain.checkpoint import Checkpoint
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.store.rows import leaf_record
from helios.audit.store.tables import audit_log, checkpoints, merkle_nodes, org_logs

__all__ = ["PgTreeStore", "append_to_trees", "locked_size", "read_nodes"]


async def locked_size(session: AsyncSession, org_id: str) -> int:
    """The org's log size, its row locked until the transaction ends (one appender per org)."""
    await session.execute(insert(org_logs).values(org_id=org_id, size=0).on_conflict_do_nothing())
    size = await session.scalar(
        select(org_logs.c.size).where(org_logs.c.org_id == org_id).with_for_update()
    )
    return int(size or 0)


async def read_nodes(
    session: AsyncSession, org_id: str, refs: Iterable[merkle.NodeRef]
) -> dict[merkle.NodeRef, bytes]:
    """The stored hashes of the perfect subtrees `refs` (absent ones are left out)."""
    wanted = sorted(set(refs))
    if not wanted:
        return {}
    rows = await session.execute(
        select(merkle_nodes.c.level, merkle_nodes.c.idx, merkle_nodes.c.hash).where(
            merkle_nodes.c.org_id == org_id,
            tuple_(merkle_nodes.c.level, merkle_nodes.c.idx).in_(wanted),
        )
    )
    return {(int(level), int(idx)): bytes(value) for level, idx, value in rows}


async def append_to_trees(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Append `rows` (in stream order) to their orgs' logs: each org's size is locked (orgs in
    sorted order, so concurrent appenders cannot deadlock), rows get consecutive leaf indexes
    and hashes, and the perfect subtrees they complete are stored; the rows themselves are
    inserted in stream order. The caller's transaction commits it all."""
    by_org: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_org.setdefault(row["org_id"], []).append(row)
    nodes: list[dict[str, Any]] = []
    sizes: dict[str, int] = {}
    for org_id in sorted(by_org):
        size = await locked_size(session, org_id)
        border = await read_nodes(session, org_id, merkle.border(size))
        leaves = []
        for offset, row in enumerate(by_org[org_id]):
            index = size + offset
            leaf = merkle.leaf_hash(leaf_bytes(leaf_record(row, index)))
            row.update(org_seq=index, leaf_hash=leaf)
            leaves.append(leaf)
        nodes += [
            {"org_id": org_id, "level": level, "idx": idx, "hash": value}
            for (level, idx), value in merkle.appended_nodes(size, leaves, border)
        ]
        sizes[org_id] = size + len(leaves)
    await session.execute(audit_log.insert(), rows)
    await session.execute(merkle_nodes.insert(), nodes)
    for org_id, size in sizes.items():
        await session.execute(update(org_logs).where(org_logs.c.org_id == org_id).values(size=size))


def _checkpoint(row: Row[Any]) -> Checkpoint:
    return Checkpoint(
        org_id=row.org_id,
        tree_size=int(row.tree_size),
        root_hash=bytes(row.root_hash),
        sealed_at=row.sealed_at,
        previous_size=int(row.previous_size),
        previous_root_hash=bytes(row.previous_root_hash),
        key_id=row.key_id,
        signature=bytes(row.signature),
    )


class PgTreeStore:
    """TreeStore over the audit schema. Each call is one short transaction of its own, except
    inside `sealing`, whose store runs every call in the lock's transaction."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, held: AsyncSession | None = None
    ) -> None:
        self._sessions = sessions
        self._held = held

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        if self._held is not None:
            yield self._held
            return
        async with self._sessions() as session, session.begin():
            yield session

    async def size(self, org_id: str) -> int:
        async with self._session() as session:
            size = await session.scalar(select(org_logs.c.size).where(org_logs.c.org_id == org_id))
        return int(size or 0)

    async def nodes(
        self, org_id: str, refs: Iterable[merkle.NodeRef]
    ) -> dict[merkle.NodeRef, bytes]:
        async with self._session() as session:
            return await read_nodes(session, org_id, refs)

    async def leaf_index(self, org_id: str, event_id: str) -> int | None:
        """None also for an event id that is not a UUID (no row can have it)."""
        try:
            parsed = uuid.UUID(event_id)
        except ValueError:
            return None
        async with self._session() as session:
            index = await session.scalar(
                select(audit_log.c.org_seq).where(
                    audit_log.c.event_id == parsed, audit_log.c.org_id == org_id
                )
            )
        return None if index is None else int(index)

    async def checkpoints(self, org_id: str) -> list[Checkpoint]:
        async with self._session() as session:
            rows = await session.execute(
                select(checkpoints)
                .where(checkpoints.c.org_id == org_id)
                .order_by(checkpoints.c.tree_size)
            )
            return [_checkpoint(row) for row in rows]

    async def checkpoint(self, org_id: str, tree_size: int = 0) -> Checkpoint | None:
        statement = select(checkpoints).where(checkpoints.c.org_id == org_id)
        if tree_size:
            statement = statement.where(checkpoints.c.tree_size == tree_size)
        else:
            statement = statement.order_by(checkpoints.c.tree_size.desc()).limit(1)
        async with self._session() as session:
            row = (await session.execute(statement)).first()
        return None if row is None else _checkpoint(row)

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        async with self._session() as session:
            await session.execute(
                insert(checkpoints)
                .values(
                    org_id=checkpoint.org_id,
                    tree_size=checkpoint.tree_size,
                    root_hash=checkpoint.root_hash,
                    sealed_at=checkpoint.sealed_at,
                    previous_size=checkpoint.previous_size,
                    previous_root_hash=checkpoint.previous_root_hash,
                    key_id=checkpoint.key_id,
                    signature=checkpoint.signature,
                )
                .on_conflict_do_nothing(index_elements=["org_id", "tree_size"])
            )

    async def unsealed_orgs(self, limit: int) -> list[str]:
        """In org id order, at most `limit`."""
        sealed = (
            select(func.max(checkpoints.c.tree_size))
            .where(checkpoints.c.org_id == org_logs.c.org_id)
            .scalar_subquery()
        )
        async with self._session() as session:
            orgs = await session.scalars(
                select(org_logs.c.org_id)
                .where(org_logs.c.size > func.coalesce(sealed, 0))
                .order_by(org_logs.c.org_id)
                .limit(limit)
            )
            return list(orgs)

    @asynccontextmanager
    async def sealing(self, org_id: str) -> AsyncIterator[PgTreeStore]:
        """A transaction-level advisory lock keyed by the org id (released at commit or
        rollback): another sealer of the org waits here; appenders lock `org_logs` rows,
        not this, so they go on. The transaction stays open for the whole block, the
        signer's round trip included."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"audit.seal/{org_id}"},
            )
            yield PgTreeStore(self._sessions, held=session)
