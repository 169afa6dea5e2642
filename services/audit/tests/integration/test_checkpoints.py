"""Signed checkpoints of the per-org Merkle logs, with inclusion and consistency proofs, over
gRPC with mutual TLS; keyvault signs for real (an in-process server on the same rolled-back
connection) and everything is checked with RFC 9162 verification and keyvault's JWK (L1)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.domain import merkle
from helios.audit.domain.checkpoint import Checkpoint, public_key_from_jwk, signature_valid
from helios.audit.domain.events import Incoming
from helios.audit.domain.leaf import leaf_bytes
from helios.audit.events.sealer import checkpoint_sealer
from helios.audit.sealing import CheckpointService
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.keyvault_signer import KeyvaultSigner
from helios.audit.store.rows import leaf_record
from helios.audit.store.tree import PgTreeStore
from helios.kernel.context import CallContext
from helios.proto.audit.v1 import audit_pb2, events_pb2
from helios.proto.keyvault.v1 import keyvault_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]
AS_SERVICE = CallContext(caller="identity")


async def _ingest(
    service: AuditService, events: list[events_pb2.AuditEvent], first_seq: int
) -> None:
    batch = [
        Incoming("audit.itest.x", event.SerializeToString(), first_seq + offset)
        for offset, event in enumerate(events)
    ]
    assert await service.ingest(batch) == len(events)


async def _leaves(sessions: async_sessionmaker[AsyncSession], org_id: str) -> list[bytes]:
    """The org's leaf hashes recomputed from its stored rows, in leaf order."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(tables.audit_log)
                .where(tables.audit_log.c.org_id == org_id)
                .order_by(tables.audit_log.c.org_seq)
            )
        ).all()
    assert [row.org_seq for row in rows] == list(range(len(rows)))
    return [merkle.leaf_hash(leaf_bytes(leaf_record(row._mapping, row.org_seq))) for row in rows]


async def _event_ids(sessions: async_sessionmaker[AsyncSession], org_id: str) -> list[str]:
    async with sessions() as session:
        ids = await session.scalars(
            select(tables.audit_log.c.event_id)
            .where(tables.audit_log.c.org_id == org_id)
            .order_by(tables.audit_log.c.org_seq)
        )
        return [str(i) for i in ids]


def _checkpoint(message: audit_pb2.Checkpoint) -> Checkpoint:
    """What a client rebuilds from the proto to check the signature."""
    return Checkpoint(
        org_id=message.org_id,
        tree_size=message.tree_size,
        root_hash=message.root_hash,
        sealed_at=message.sealed_at.ToDatetime(dt.UTC),
        previous_size=message.previous_size,
        previous_root_hash=message.previous_root_hash,
        key_id=message.key_id,
        signature=message.signature,
    )


async def _signed_by_keyvault(servers: Any, message: audit_pb2.Checkpoint) -> bool:
    key_id = message.key_id.partition(":")[0]
    reply = await servers.keyvault.GetPublicKey(
        keyvault_pb2.GetPublicKeyRequest(org_id="", key_id=key_id), timeout=10
    )
    keys = {
        jwk.kid: public_key_from_jwk({"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x})
        for jwk in reply.keys
    }
    return signature_valid(_checkpoint(message), keys)


async def _refused(call: Awaitable[Any], code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return refused.value.details() or ""


async def test_l1_seal_signs_a_checkpoint_per_org_verified_with_keyvaults_jwk(
    servers: Any,
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L1: with events of two orgs interleaved, SealCheckpoint (a user of the org, or a Helios
    service by its mTLS identity) signs each org's checkpoint with keyvault's Ed25519 key: the
    signature verifies with the JWK keyvault's GetPublicKey returns, and the root is the RFC
    9162 root of the leaf hashes recomputed from the stored rows; GetCheckpoint returns it."""
    org_a, org_b = str(uuid.uuid4()), str(uuid.uuid4())
    first = [make_event(org_id=org_a if i % 3 else org_b) for i in range(8)]
    second = [make_event(org_id=org_a if i % 2 else org_b) for i in range(5)]
    await _ingest(audit_service, first, 100)
    await _ingest(audit_service, second, 200)

    by_user = await servers.audit["gateway"].SealCheckpoint(
        audit_pb2.SealCheckpointRequest(org_id=org_a), metadata=servers.as_user(org_a), timeout=10
    )
    by_service = await servers.audit["identity"].SealCheckpoint(
        audit_pb2.SealCheckpointRequest(org_id=org_b), timeout=10
    )

    for org_id, sealed in ((org_a, by_user.checkpoint), (org_b, by_service.checkpoint)):
        leaves = await _leaves(db_session, org_id)
        assert sealed.org_id == org_id
        assert sealed.tree_size == len(leaves) > 0
        assert sealed.root_hash == merkle.root_from_leaves(leaves)
        assert (sealed.previous_size, sealed.previous_root_hash) == (0, merkle.EMPTY_ROOT)
        assert await _signed_by_keyvault(servers, sealed)
        tampered = audit_pb2.Checkpoint()
        tampered.CopyFrom(sealed)
        tampered.tree_size -= 1
        assert not await _signed_by_keyvault(servers, tampered)
        got = await servers.audit["identity"].GetCheckpoint(
            audit_pb2.GetCheckpointRequest(org_id=org_id), timeout=10
        )
        assert got.checkpoint == sealed
    assert by_user.checkpoint.key_id == by_service.checkpoint.key_id


async def test_l1_checkpoints_chain_and_an_unchanged_log_keeps_its_checkpoint(
    servers: Any,
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L1: sealing again without growth returns the same checkpoint; after growth the new one
    names the previous size and root, both stay readable by size, and the consistency proof
    between them verifies (and fails against another root)."""
    org = str(uuid.uuid4())
    stub, metadata = servers.audit["gateway"], servers.as_user(org)
    seal = audit_pb2.SealCheckpointRequest(org_id=org)
    await _ingest(audit_service, [make_event(org_id=org) for _ in range(6)], 300)
    first = (await stub.SealCheckpoint(seal, metadata=metadata, timeout=10)).checkpoint
    again = (await stub.SealCheckpoint(seal, metadata=metadata, timeout=10)).checkpoint
    assert again == first

    await _ingest(audit_service, [make_event(org_id=org) for _ in range(7)], 400)
    second = (await stub.SealCheckpoint(seal, metadata=metadata, timeout=10)).checkpoint
    assert (first.tree_size, second.tree_size) == (6, 13)
    assert (second.previous_size, second.previous_root_hash) == (6, first.root_hash)
    assert second.root_hash == merkle.root_from_leaves(await _leaves(db_session, org))
    assert await _signed_by_keyvault(servers, second)

    for size, expected in ((6, first), (13, second), (0, second)):
        got = await stub.GetCheckpoint(
            audit_pb2.GetCheckpointRequest(org_id=org, tree_size=size),
            metadata=metadata,
            timeout=10,
        )
        assert got.checkpoint == expected

    proof = (
        await stub.GetConsistencyProof(
            audit_pb2.GetConsistencyProofRequest(org_id=org, first_size=6, second_size=13),
            metadata=metadata,
            timeout=10,
        )
    ).proof
    assert proof
    assert merkle.verify_consistency(6, 13, first.root_hash, second.root_hash, list(proof))
    assert not merkle.verify_consistency(6, 13, second.root_hash, second.root_hash, list(proof))


async def test_l1_every_inclusion_and_consistency_proof_verifies(
    servers: Any,
    checkpoints: CheckpointService,
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L1: GetInclusionProof of every event verifies against the latest checkpoint's root (and
    against the earlier checkpoint for the events it covers); the use cases' proofs verify for
    every (leaf, size) and every (first, second) pair of a 13-leaf log."""
    org = str(uuid.uuid4())
    stub = servers.audit["identity"]
    seal = audit_pb2.SealCheckpointRequest(org_id=org)
    await _ingest(audit_service, [make_event(org_id=org) for _ in range(5)], 500)
    early = (await stub.SealCheckpoint(seal, timeout=10)).checkpoint
    await _ingest(audit_service, [make_event(org_id=org) for _ in range(8)], 600)
    latest = (await stub.SealCheckpoint(seal, timeout=10)).checkpoint
    leaves = await _leaves(db_session, org)
    event_ids = await _event_ids(db_session, org)
    assert latest.tree_size == len(leaves) == 13

    for index, event_id in enumerate(event_ids):
        for checkpoint, size in ((latest, 0), (early, early.tree_size)):
            if index >= checkpoint.tree_size:
                continue
            reply = await stub.GetInclusionProof(
                audit_pb2.GetInclusionProofRequest(org_id=org, event_id=event_id, tree_size=size),
                timeout=10,
            )
            assert (reply.leaf_index, reply.tree_size) == (index, checkpoint.tree_size)
            path = list(reply.audit_path)
            assert merkle.verify_inclusion(
                leaves[index], index, checkpoint.tree_size, path, checkpoint.root_hash
            )
            assert not merkle.verify_inclusion(
                merkle.leaf_hash(b"forged"), index, checkpoint.tree_size, path, checkpoint.root_hash
            )

    roots = [merkle.root_from_leaves(leaves[:size]) for size in range(14)]
    for size in range(1, 14):
        for index in range(size):
            proof = await checkpoints.inclusion_proof(AS_SERVICE, org, event_ids[index], size)
            assert merkle.verify_inclusion(
                leaves[index], index, size, proof.audit_path, roots[size]
            ), (index, size)
    for second in range(14):
        for first in range(second + 1):
            path = await checkpoints.consistency_proof(AS_SERVICE, org, first, second)
            assert merkle.verify_consistency(first, second, roots[first], roots[second], path), (
                first,
                second,
            )


async def test_l1_checkpoint_refusals(
    servers: Any,
    audit_service: AuditService,
    make_event: MakeEvent,
) -> None:
    """L1: unknown events, another org's events, malformed ids, sizes beyond the log, events
    outside the asked tree, other orgs' principals, principals without an org and callers that
    are not Helios services are refused with clear codes; nothing is sealed for an empty log."""
    org, other = str(uuid.uuid4()), str(uuid.uuid4())
    gateway, service = servers.audit["gateway"], servers.audit["identity"]
    mine, theirs = make_event(org_id=org), make_event(org_id=other)
    late = make_event(org_id=org)

    await _refused(
        service.GetCheckpoint(audit_pb2.GetCheckpointRequest(org_id=org), timeout=10),
        grpc.StatusCode.NOT_FOUND,
    )
    await _refused(
        service.SealCheckpoint(audit_pb2.SealCheckpointRequest(org_id=org), timeout=10),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await _ingest(audit_service, [mine, theirs, make_event(org_id=org)], 700)
    await _refused(
        service.GetInclusionProof(
            audit_pb2.GetInclusionProofRequest(org_id=org, event_id=mine.event_id), timeout=10
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await service.SealCheckpoint(audit_pb2.SealCheckpointRequest(org_id=org), timeout=10)
    await _ingest(audit_service, [late], 800)

    def inclusion(event_id: str, tree_size: int = 0) -> audit_pb2.GetInclusionProofRequest:
        return audit_pb2.GetInclusionProofRequest(
            org_id=org, event_id=event_id, tree_size=tree_size
        )

    not_found = grpc.StatusCode.NOT_FOUND
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    for request, code in (
        (inclusion(str(uuid.uuid4())), not_found),
        (inclusion(theirs.event_id), not_found),
        (inclusion("not-a-uuid"), invalid),
        (inclusion(mine.event_id, 5), invalid),
        (inclusion(mine.event_id, 2**64 - 1), invalid),
        (inclusion(late.event_id, 2), invalid),
        (inclusion(late.event_id), grpc.StatusCode.FAILED_PRECONDITION),
    ):
        details = await _refused(service.GetInclusionProof(request, timeout=10), code)
        assert details
    assert "beyond the log (3 leaves)" in await _refused(
        service.GetInclusionProof(inclusion(mine.event_id, 5), timeout=10), invalid
    )
    assert "not among the first 2 leaves" in await _refused(
        service.GetInclusionProof(inclusion(late.event_id, 2), timeout=10), invalid
    )
    for first, second in ((0, 5), (3, 2), (2**64 - 1, 2**64 - 1)):
        await _refused(
            service.GetConsistencyProof(
                audit_pb2.GetConsistencyProofRequest(
                    org_id=org, first_size=first, second_size=second
                ),
                timeout=10,
            ),
            invalid,
        )
    await _refused(
        service.GetCheckpoint(
            audit_pb2.GetCheckpointRequest(org_id=org, tree_size=2**64 - 1), timeout=10
        ),
        invalid,
    )
    await _refused(
        service.GetCheckpoint(audit_pb2.GetCheckpointRequest(org_id=org, tree_size=3), timeout=10),
        not_found,
    )

    denied = grpc.StatusCode.PERMISSION_DENIED
    for metadata, stub in (
        (servers.as_user(other), gateway),
        (servers.as_user(""), gateway),
        (None, servers.audit["client"]),
    ):
        await _refused(
            stub.SealCheckpoint(
                audit_pb2.SealCheckpointRequest(org_id=org), metadata=metadata, timeout=10
            ),
            denied,
        )
        await _refused(
            stub.GetCheckpoint(
                audit_pb2.GetCheckpointRequest(org_id=org), metadata=metadata, timeout=10
            ),
            denied,
        )
        await _refused(
            stub.GetInclusionProof(inclusion(mine.event_id), metadata=metadata, timeout=10),
            denied,
        )
        await _refused(
            stub.GetConsistencyProof(
                audit_pb2.GetConsistencyProofRequest(org_id=org, first_size=1, second_size=3),
                metadata=metadata,
                timeout=10,
            ),
            denied,
        )


async def test_l1_background_sealer_seals_every_org_that_grew(
    checkpoints: CheckpointService,
    keyvault_signer: KeyvaultSigner,
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    make_event: MakeEvent,
) -> None:
    """L1: seal_due seals each grown org once (a batch limit at a time) and then nothing; the
    wiring's sealer loop does the same on its interval and ends when the server stops."""
    orgs = sorted(str(uuid.uuid4()) for _ in range(3))
    await _ingest(audit_service, [make_event(org_id=o) for o in orgs for _ in range(2)], 900)
    assert await checkpoints.seal_due(2) == 2
    assert await checkpoints.seal_due(2) == 1
    assert await checkpoints.seal_due(2) == 0
    for org in orgs:
        latest = await checkpoints.checkpoint(AS_SERVICE, org)
        assert latest.tree_size == 2
        assert latest.root_hash == merkle.root_from_leaves(await _leaves(db_session, org))

    await _ingest(audit_service, [make_event(org_id=orgs[1]) for _ in range(3)], 950)
    passes: list[int] = []
    done = asyncio.Event()

    class Observed(CheckpointService):
        async def seal_due(self, limit: int) -> int:
            sealed = await super().seal_due(limit)
            passes.append(sealed)
            done.set()
            return sealed

    observed = Observed(PgTreeStore(db_session), keyvault_signer)
    stop = asyncio.Event()
    task = asyncio.create_task(checkpoint_sealer(observed, 0.01)(stop))
    await asyncio.wait_for(done.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert passes[0] == 1
    grown = await checkpoints.checkpoint(AS_SERVICE, orgs[1])
    assert (grown.tree_size, grown.previous_size) == (5, 2)
