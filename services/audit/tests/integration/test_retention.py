"""Retention by tier against real PostgreSQL and a real in-process keyvault (L2): only whole
expired segments covered by a checkpoint are deleted, each under a purge record signed by
keyvault's Ed25519 key; the kept Merkle nodes still reproduce every signed root; the service's
database role can neither delete rows itself nor purge early."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import Row, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.audit.cli import print_report, verify_log
from helios.audit.domain import merkle
from helios.audit.domain.checkpoint import Checkpoint, checkpoint_note, public_key_from_jwk
from helios.audit.domain.events import Incoming
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.domain.retention import (
    RETENTION,
    PurgeRecord,
    Segment,
    Tier,
    purge_record_valid,
)
from helios.audit.domain.verification import LogVerifier, Report
from helios.audit.ports import CheckpointSigner
from helios.audit.retention import RetentionService, ScheduledPurge
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.keyvault_signer import KeyvaultSigner
from helios.audit.store.reader import PgLogReader
from helios.audit.store.retention import postgres_retention
from helios.audit.store.rows import leaf_record
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, PermissionDeniedError
from helios.kernel.testing.audit_events import AuditEvents
from helios.kernel.tls import CertFiles
from helios.proto.audit.v1 import audit_pb2, events_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]
LEVEL = 2  # segments of 4 leaves
DAY = dt.timedelta(days=1)
AS_IDENTITY = CallContext(caller="identity")
_STREAM = itertools.count(9_100_000)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _retention(
    sessions: async_sessionmaker[AsyncSession], signer: CheckpointSigner
) -> RetentionService:
    """Wired like production, with 4-leaf segments."""
    uow = postgres_retention(sessions, AuditRecorder("audit", tables.outbox))
    return RetentionService(uow, signer, segment_level=LEVEL)


@pytest.fixture
def retention(
    audit_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    keyvault_signer: KeyvaultSigner,
) -> RetentionService:
    """The retention use cases over the test's rolled-back sessions and keyvault's signer."""
    return _retention(db_session, keyvault_signer)


class SignerOutsideAuditRole:
    """The real keyvault signer, for a test that runs audit as its database role helios_audit.
    Keyvault serves the call on the test's one connection, and its own process never runs as
    audit's role: the connection leaves that role while keyvault works and takes it back after."""

    def __init__(self, signer: KeyvaultSigner, connection: AsyncConnection) -> None:
        self._signer = signer
        self._db = connection

    async def sign(self, note: bytes) -> tuple[bytes, str]:
        await self._db.exec_driver_sql("SET LOCAL ROLE NONE")
        try:
            return await self._signer.sign(note)
        finally:
            await self._db.exec_driver_sql("SET LOCAL ROLE helios_audit")

    async def public_keys(self) -> list[dict[str, str]]:
        return await self._signer.public_keys()


async def _ingest(
    service: AuditService,
    make_event: MakeEvent,
    org_id: str,
    occurred: list[dt.datetime],
) -> None:
    """Append one event per `occurred` time to the org's log, in that order."""
    batch = [
        Incoming(
            "audit.itest.retention",
            make_event(org_id=org_id, occurred_at=at).SerializeToString(),
            next(_STREAM),
        )
        for at in occurred
    ]
    assert await service.ingest(batch) == len(batch)


async def _rows(sessions: async_sessionmaker[AsyncSession], org_id: str) -> list[Row[Any]]:
    async with sessions() as session:
        result = await session.execute(
            select(tables.audit_log)
            .where(tables.audit_log.c.org_id == org_id)
            .order_by(tables.audit_log.c.org_seq)
        )
        return list(result.all())


def _leaf(row: Row[Any]) -> bytes:
    """The leaf hash recomputed from the stored row (never the stored hash)."""
    return merkle.leaf_hash(leaf_bytes(leaf_record(dict(row._mapping), row.org_seq)))


async def _seal(
    sessions: async_sessionmaker[AsyncSession],
    signer: CheckpointSigner,
    org_id: str,
    size: int,
    previous: Checkpoint | None = None,
) -> Checkpoint:
    """A checkpoint of the first `size` leaves, signed by keyvault and stored directly."""
    leaves = [_leaf(row) for row in await _rows(sessions, org_id)][:size]
    assert len(leaves) == size
    root = merkle.root_from_leaves(leaves)
    previous_size = previous.tree_size if previous else 0
    previous_root = previous.root_hash if previous else merkle.EMPTY_ROOT
    sealed_at = _now()
    signature, key_id = await signer.sign(
        checkpoint_note(org_id, size, root, sealed_at, previous_size, previous_root)
    )
    checkpoint = Checkpoint(
        org_id=org_id,
        tree_size=size,
        root_hash=root,
        sealed_at=sealed_at,
        previous_size=previous_size,
        previous_root_hash=previous_root,
        key_id=key_id,
        signature=signature,
    )
    async with sessions() as session, session.begin():
        await session.execute(
            tables.checkpoints.insert().values(
                org_id=org_id,
                tree_size=size,
                root_hash=root,
                sealed_at=sealed_at,
                previous_size=previous_size,
                previous_root_hash=previous_root,
                key_id=key_id,
                signature=signature,
            )
        )
    return checkpoint


async def _node(sessions: async_sessionmaker[AsyncSession], org_id: str, ref: Any) -> bytes:
    async with sessions() as session:
        value = await session.scalar(
            select(tables.merkle_nodes.c.hash).where(
                tables.merkle_nodes.c.org_id == org_id,
                tables.merkle_nodes.c.level == ref[0],
                tables.merkle_nodes.c.idx == ref[1],
            )
        )
    assert value is not None, f"node {ref} is gone"
    return bytes(value)


async def _keys(signer: CheckpointSigner) -> dict[str, Any]:
    return {jwk["kid"]: public_key_from_jwk(jwk) for jwk in await signer.public_keys()}


async def _in_savepoint(connection: AsyncConnection, statements: Any, params: Any) -> None:
    async with connection.begin_nested():
        for statement in statements:
            await connection.exec_driver_sql(statement, params if "%(" in statement else None)


async def _refused(connection: AsyncConnection, *statements: str, params: Any = None) -> str:
    """Run statements in a savepoint that must fail; returns the database's error message."""
    with pytest.raises(DBAPIError) as refused:
        await _in_savepoint(connection, statements, params)
    return str(refused.value.orig)


async def test_l2_purge_removes_whole_expired_segments_and_the_rest_still_verifies(
    retention: RetentionService,
    audit_service: AuditService,
    keyvault_signer: KeyvaultSigner,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
    make_event: MakeEvent,
) -> None:
    """L2: a free org (90 days) with 14 leaves in 4-leaf segments, checkpointed at 8 and 14:
    segments [0, 4) and [8, 12), every event older than 90 days, are purged; [4, 8) stays
    whole for one event 10 days old; [12, 14) is not a whole segment. An enterprise org with
    the same old events and an org without a tier keep everything. Each purge record verifies
    with keyvault's key and carries the kept node hash; with those hashes the remaining rows
    reproduce both signed roots (RFC 9162), and the log verifier reports the ranges purged and
    the log ok. Each purge is audited; a second pass purges nothing."""
    now = _now()
    free, enterprise, untiered = (str(uuid.uuid4()) for _ in range(3))
    ages = [200, 200, 200, 200, 150, 150, 10, 150, 100, 100, 100, 100, 300, 300]
    occurred = [now - days * DAY for days in ages]
    for org_id in (free, enterprise, untiered):
        await _ingest(audit_service, make_event, org_id, occurred)
    before = [_leaf(row) for row in await _rows(db_session, free)]
    first = await _seal(db_session, keyvault_signer, free, 8)
    latest = await _seal(db_session, keyvault_signer, free, 14, first)
    for org_id in (enterprise, untiered):
        await _seal(db_session, keyvault_signer, org_id, 14)
    assert await retention.set_tier(AS_IDENTITY, free, "free") is None
    assert await retention.set_tier(AS_IDENTITY, enterprise, Tier.ENTERPRISE) is None
    events = AuditEvents(db_connection, "audit")
    await events.mark()

    results = await retention.purge_due(now)

    assert [(r.record.org_id, r.record.first_index, r.rows) for r in results] == [
        (free, 0, 4),
        (free, 8, 4),
    ]
    kept = await _rows(db_session, free)
    assert [row.org_seq for row in kept] == [4, 5, 6, 7, 12, 13]
    for org_id in (enterprise, untiered):
        assert len(await _rows(db_session, org_id)) == 14

    records = await retention.purges(free)
    assert records == [r.record for r in results]
    keys = await _keys(keyvault_signer)
    nodes = {ref: await _node(db_session, free, ref) for ref in ((2, 0), (2, 2))}
    for record, ref in zip(records, nodes, strict=True):
        assert purge_record_valid(record, keys)
        assert (record.level, record.idx) == ref
        assert record.range_hash == nodes[ref]
        assert record.range_hash == merkle.root_from_leaves(
            before[record.first_index : record.end_index]
        )
        assert record.tier is Tier.FREE
        assert record.cutoff == now - 90 * DAY
        assert record.purged_at == now
    assert records[0].newest_occurred_at == now - 200 * DAY
    assert records[1].newest_occurred_at == now - 100 * DAY

    # The kept rows and the kept node hashes reproduce both signed roots.
    leaves = {row.org_seq: _leaf(row) for row in kept}
    first_root = merkle.root_from_slice(
        4, 8, 8, [leaves[i] for i in range(4, 8)], {(0, 4): merkle.range_hash(0, 4, nodes)}
    )
    assert first_root == first.root_hash
    latest_root = merkle.root_from_slice(
        12,
        14,
        14,
        [leaves[12], leaves[13]],
        {(0, 8): first_root, (8, 12): merkle.range_hash(8, 12, nodes)},
    )
    assert latest_root == latest.root_hash

    report = _verify(free, [first, latest], keys, kept, records)
    assert report.ok, report.findings
    assert report.purged == ((0, 4), (8, 12))
    assert report.size == 14
    printed = io.StringIO()
    print_report(report, printed)
    assert f"org {free}: OK (" in printed.getvalue()
    assert "purged by policy: [0, 4), [8, 12)" in printed.getvalue()
    assert not _verify(free, [first, latest], keys, kept, []).ok

    reader = PgLogReader(db_session)
    cli_report = await verify_log(
        reader, free, [first, latest], keys, expected_size=14, purges=records
    )
    assert cli_report.ok
    assert cli_report.purged == ((0, 4), (8, 12))
    forged = [dataclasses.replace(r, signature=bytes(64)) for r in records]
    assert not (await verify_log(reader, free, [first, latest], keys, purges=forged)).ok

    _expect_purge_events(await events.new(), records)
    assert await retention.purge_due(now) == []
    assert [row.org_seq for row in await _rows(db_session, free)] == [4, 5, 6, 7, 12, 13]


def _verify(
    org_id: str,
    checkpoints: list[Checkpoint],
    keys: dict[str, Any],
    rows: list[Row[Any]],
    records: list[PurgeRecord],
) -> Report:
    """The log verifier's report on the stored rows, given the purge records' ranges."""
    verifier = LogVerifier(
        org_id,
        checkpoints,
        keys,
        purged=[(r.first_index, r.end_index, r.range_hash) for r in records],
    )
    for row in rows:
        record = leaf_record(dict(row._mapping), row.org_seq)
        verifier.feed(row.org_seq, record, bytes(row.leaf_hash))
    return verifier.finish()


def _expect_purge_events(events: list[events_pb2.AuditEvent], records: list[PurgeRecord]) -> None:
    """One audit.retention.purge event per record, from the audit service itself."""
    purged = [e for e in events if e.action == "audit.retention.purge"]
    assert [(e.org_id, e.resource_id) for e in purged] == [
        (r.org_id, f"{r.first_index}-{r.end_index}") for r in records
    ]
    for event, record in zip(purged, records, strict=True):
        assert event.producer == "audit"
        assert event.resource_type == "audit.logSegment"
        assert event.diff["first_index"] == record.first_index
        assert event.diff["rows"] == record.end_index - record.first_index
        assert event.diff["tier"] == record.tier.value


async def test_l2_only_segments_a_checkpoint_covers_are_purged(
    retention: RetentionService,
    audit_service: AuditService,
    keyvault_signer: KeyvaultSigner,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
    make_event: MakeEvent,
) -> None:
    """L2: 12 old events, a checkpoint of 8 leaves: [0, 4) and [4, 8) are purged, [8, 12)
    stays until a checkpoint covers it, and the database refuses to purge it even with a
    purge record in place."""
    now = _now()
    org_id = str(uuid.uuid4())
    await _ingest(audit_service, make_event, org_id, [now - 400 * DAY] * 12)
    await _seal(db_session, keyvault_signer, org_id, 8)
    await retention.set_tier(AS_IDENTITY, org_id, Tier.STARTER)

    results = await retention.purge_due(now)

    assert [(r.record.first_index, r.rows) for r in results] == [(0, 4), (4, 4)]
    assert [row.org_seq for row in await _rows(db_session, org_id)] == list(range(8, 12))
    cut = now - RETENTION[Tier.STARTER]
    await _insert_record(db_session, org_id, Segment(LEVEL, 2), now - 400 * DAY, cut, "starter")
    refusal = await _refused(
        db_connection,
        "SELECT audit.purge_segment(%(org)s, 2, 2, %(cut)s)",
        params={"org": org_id, "cut": cut},
    )
    assert f"no checkpoint of org {org_id} covers [8, 12)" in refusal
    assert len(await _rows(db_session, org_id)) == 4


async def _insert_record(
    sessions: async_sessionmaker[AsyncSession],
    org_id: str,
    segment: Segment,
    newest: dt.datetime,
    cut: dt.datetime,
    tier: str,
) -> None:
    """A purge record with the segment's real node hash and a made-up signature."""
    node = await _node(sessions, org_id, (segment.level, segment.idx))
    async with sessions() as session, session.begin():
        await session.execute(
            tables.purges.insert().values(
                org_id=org_id,
                first_index=segment.first,
                end_index=segment.end,
                level=segment.level,
                idx=segment.idx,
                range_hash=node,
                newest_occurred_at=newest,
                cutoff=cut,
                tier=tier,
                purged_at=_now(),
                key_id="forged",
                signature=b"\x00" * 64,
            )
        )


async def test_l2_service_role_cannot_delete_rows_or_purge_early(
    audit_service: AuditService,
    keyvault_signer: KeyvaultSigner,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
    make_event: MakeEvent,
) -> None:
    """L2 (and L1): as helios_audit, the service's database role, a DELETE of audit rows is
    denied (with or without the purge switch), and purge_segment refuses a segment holding a
    recent event, a cutoff more recent than the tier allows and a segment without its purge
    record; purge records cannot be changed. The retention pass itself, run as helios_audit,
    purges the one due segment. The superuser's DELETE is refused by the trigger too."""
    now = _now()
    org_id = str(uuid.uuid4())
    old, recent = now - 200 * DAY, now - 10 * DAY
    await _ingest(audit_service, make_event, org_id, [old] * 4 + [old, old, recent, old])
    await _seal(db_session, keyvault_signer, org_id, 8)
    retention = _retention(db_session, SignerOutsideAuditRole(keyvault_signer, db_connection))
    await retention.set_tier(AS_IDENTITY, org_id, Tier.FREE)
    cut = now - RETENTION[Tier.FREE]
    role = "SET LOCAL ROLE helios_audit"
    org = {"org": org_id, "cut": cut, "now": now}

    delete = "DELETE FROM audit.audit_log WHERE org_id = %(org)s"
    switch = "SET LOCAL helios.audit_purge = 'on'"
    denied = "permission denied for table audit_log"
    assert denied in await _refused(db_connection, role, delete, params=org)
    assert denied in await _refused(db_connection, role, switch, delete, params=org)
    assert "audit_log is append-only: DELETE refused" in await _refused(
        db_connection, switch, delete, params=org
    )

    purge = "SELECT audit.purge_segment(%(org)s, 2, {idx}, %({cut})s)"
    forge = (
        "INSERT INTO audit.purges VALUES (%(org)s::varchar, 4, 8, 2, 1, "
        "(SELECT hash FROM audit.merkle_nodes"
        " WHERE org_id = %(org)s::varchar AND level = 2 AND idx = 1),"
        " %(old)s, %(cut)s, 'free', %(now)s, 'forged', '\\x00')"
    )
    forged = {**org, "old": old}
    too_recent = await _refused(
        db_connection, role, forge, purge.format(idx=1, cut="cut"), params=forged
    )
    assert "segment [4, 8) has events at or after the cutoff" in too_recent
    early = await _refused(db_connection, role, purge.format(idx=0, cut="now"), params=org)
    assert "is more recent than tier free allows" in early
    unrecorded = await _refused(db_connection, role, purge.format(idx=0, cut="cut"), params=org)
    assert f"no purge record of org {org_id} matches [0, 4)" in unrecorded
    assert len(await _rows(db_session, org_id)) == 8

    async with db_connection.begin_nested():
        await db_connection.exec_driver_sql(role)
        results = await retention.purge_due(now)
        await db_connection.exec_driver_sql("SET LOCAL ROLE NONE")
    assert [(r.record.first_index, r.rows) for r in results] == [(0, 4)]
    assert [row.org_seq for row in await _rows(db_session, org_id)] == [4, 5, 6, 7]
    assert purge_record_valid(results[0].record, await _keys(keyvault_signer))

    first = {"org": org_id}
    change = "UPDATE audit.purges SET tier = 'enterprise' WHERE org_id = %(org)s"
    remove = "DELETE FROM audit.purges WHERE org_id = %(org)s"
    assert "permission denied for table purges" in await _refused(
        db_connection, role, change, params=first
    )
    assert "permission denied for table purges" in await _refused(
        db_connection, role, remove, params=first
    )
    assert "purges is append-only: DELETE refused" in await _refused(
        db_connection, remove, params=first
    )
    assert "purges is append-only: TRUNCATE refused" in await _refused(
        db_connection, "TRUNCATE audit.purges"
    )


async def test_l2_a_failed_purge_leaves_nothing_half_done(
    retention: RetentionService,
    audit_service: AuditService,
    keyvault_signer: KeyvaultSigner,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
    make_event: MakeEvent,
    pki: dict[str, CertFiles],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """L2: when keyvault cannot be reached nothing is signed and nothing purged; when the
    database refuses the delete after the purge record was written (here: a clock a day
    ahead of the database's, so the cutoff is more recent than the tier allows), the record,
    the delete and the audit event roll back together. The next good pass purges."""
    now = _now()
    org_id = str(uuid.uuid4())
    await _ingest(audit_service, make_event, org_id, [now - 100 * DAY] * 4)
    await _seal(db_session, keyvault_signer, org_id, 4)
    await retention.set_tier(AS_IDENTITY, org_id, Tier.FREE)
    events = AuditEvents(db_connection, "audit")
    await events.mark()

    unreachable = KeyvaultSigner("localhost:1", pki["audit"])
    try:
        assert await _retention(db_session, unreachable).purge_due(now) == []
    finally:
        await unreachable.close()
    assert "purge failed" in caplog.text
    caplog.clear()
    assert await retention.purge_due(now + DAY) == []
    (refused,) = [r for r in caplog.records if r.getMessage() == "retention purge refused"]
    assert "more recent than tier free allows" in getattr(refused, "reason", "")
    assert await retention.purges(org_id) == []
    assert len(await _rows(db_session, org_id)) == 4
    await events.expect_none("failed purges")

    results = await retention.purge_due(now)
    assert [(r.record.first_index, r.rows) for r in results] == [(0, 4)]
    assert await _rows(db_session, org_id) == []


async def test_l2_scheduled_purge_runs_at_start_and_stops(
    retention: RetentionService,
    audit_service: AuditService,
    keyvault_signer: KeyvaultSigner,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L2: the background task purges as soon as it starts (restarts never postpone
    retention), passes again after its interval, and ends when the server stops."""
    now = _now()
    org_id = str(uuid.uuid4())
    await _ingest(audit_service, make_event, org_id, [now - 100 * DAY] * 4)
    await _seal(db_session, keyvault_signer, org_id, 4)
    await retention.set_tier(AS_IDENTITY, org_id, Tier.FREE)
    stop = asyncio.Event()
    passes: list[dt.datetime] = []

    def clock() -> dt.datetime:
        # the second pass begins one interval after the first ended: then stop the server
        passes.append(_now())
        if len(passes) == 2:
            stop.set()
        return now

    await asyncio.wait_for(ScheduledPurge(retention, 0.05, clock).run(stop), timeout=10)
    assert len(passes) == 2
    assert passes[1] - passes[0] >= dt.timedelta(seconds=0.05)
    assert await _rows(db_session, org_id) == []
    assert [r.first_index for r in await retention.purges(org_id)] == [0]


async def test_l2_set_tier_by_helios_services_only_and_audited(
    retention: RetentionService,
    db_session: async_sessionmaker[AsyncSession],
    db_connection: AsyncConnection,
) -> None:
    """L2: a Helios back-end service (mTLS identity) sets an org's tier; it returns the
    previous tier and is audited as audit.retention.setTier. The gateway (people's calls, until
    the platform-root check through authz), unknown callers, unknown tiers and bad org ids are
    refused; the database refuses an unknown tier too."""
    org_id = str(uuid.uuid4())
    events = AuditEvents(db_connection, "audit")
    await events.mark()

    assert await retention.set_tier(AS_IDENTITY, org_id, "business") is None
    await events.expect_one(
        "audit.retention.setTier",
        org_id=org_id,
        resource_id=org_id,
        producer="audit",
        diff={"tier": {"from": "", "to": "business"}},
    )
    assert await retention.set_tier(AS_IDENTITY, org_id, Tier.FREE) is Tier.BUSINESS
    await events.expect_one(
        "audit.retention.setTier", diff={"tier": {"from": "business", "to": "free"}}
    )
    async with db_session() as session:
        stored = await session.scalar(
            select(tables.org_retention.c.tier).where(tables.org_retention.c.org_id == org_id)
        )
    assert stored == "free"

    for caller in ("gateway", "client", ""):
        with pytest.raises(PermissionDeniedError):
            await retention.set_tier(CallContext(caller=caller), org_id, Tier.ENTERPRISE)
    for org, tier, field in (
        (org_id, "gold", "tier"),
        (org_id, "", "tier"),
        ("", "free", "org_id"),
        ("x" * 65, "free", "org_id"),
    ):
        with pytest.raises(InvalidArgumentError) as refused:
            await retention.set_tier(AS_IDENTITY, org, tier)
        assert refused.value.field == field
    await events.expect_none("refused calls")
    assert "org_retention_tier" in await _refused(
        db_connection,
        "INSERT INTO audit.org_retention VALUES (%(org)s, 'gold', now())",
        params={"org": str(uuid.uuid4())},
    )
    async with db_session() as session:
        count = await session.scalar(select(func.count()).select_from(tables.org_retention))
    assert count == 1


async def test_l2_database_enforces_the_domains_retention_periods(
    audit_schema: str, db_connection: AsyncConnection
) -> None:
    """L2: audit.retention_period(), which purge_segment checks cutoffs against, holds the same
    periods as the domain's RETENTION table."""
    for tier, period in RETENTION.items():
        stored = await db_connection.exec_driver_sql(
            "SELECT audit.retention_period(%(tier)s)", {"tier": tier.value}
        )
        assert stored.scalar() == period, tier


async def test_l2_set_retention_tier_over_grpc_is_for_helios_services_only(
    servers: Any, db_connection: AsyncConnection
) -> None:
    """SetRetentionTier through the server: a Helios service sets it (audited), a user of the
    org and a foreign certificate are refused, an unspecified tier is invalid."""
    org = str(uuid.uuid4())
    request = audit_pb2.SetRetentionTierRequest(
        org_id=org, tier=audit_pb2.RETENTION_TIER_ENTERPRISE
    )
    await servers.audit["identity"].SetRetentionTier(request)
    stored = await db_connection.scalar(
        text("SELECT tier FROM audit.org_retention WHERE org_id = :org"), {"org": org}
    )
    assert stored == "enterprise"
    for stub, metadata in (
        (servers.audit["gateway"], servers.as_user(org)),
        (servers.audit["client"], ()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SetRetentionTier(request, metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await servers.audit["identity"].SetRetentionTier(
            audit_pb2.SetRetentionTierRequest(org_id=org)
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
