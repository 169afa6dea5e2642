"""Export (L2): a time range of an org's sealed log streamed over gRPC with mutual TLS as gzip
members, concatenated into a bundle that `python -m helios.audit verify --bundle` checks offline
(no database) against keyvault's JWKs, pinned; a modified copy fails; a resumed export adds up to
the same bundle; progress in every message; refusals. Keyvault signs for real (an in-process
server on the test's rolled-back connection)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.domain.events import Incoming
from helios.audit.exporting import CHUNK_EVENTS, ExportService
from helios.audit.service import AuditService
from helios.audit.store.keyvault_signer import KeyvaultSigner
from helios.audit.store.reader import PgLogReader
from helios.audit.store.tree import PgTreeStore
from helios.kernel.context import CallContext
from helios.proto.audit.v1 import audit_pb2, events_pb2
from helios.proto.keyvault.v1 import keyvault_pb2

MakeEvent = Callable[..., events_pb2.AuditEvent]
AS_SERVICE = CallContext(caller="identity")
BASE = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
SEALED = 2500  # the org's leaves under its latest checkpoint
FIRST_SEAL = 1200
SINCE = BASE + dt.timedelta(minutes=150)
UNTIL = BASE + dt.timedelta(minutes=2450)


def _occurred(index: int) -> dt.datetime:
    """One event a minute in arrival order, but every seventh arrives 90 minutes late: indexes
    follow arrival, so a time range is not a run of indexes."""
    return BASE + dt.timedelta(minutes=index - (90 if index % 7 == 3 else 0))


def _in_range(index: int) -> bool:
    return SINCE <= _occurred(index) < UNTIL


@dataclass
class Log:
    """The org's events by leaf index, the expected slice [lo, hi), and another org."""

    org_id: str
    other_org: str
    events: list[events_pb2.AuditEvent]
    lo: int
    hi: int


async def _ingest(
    service: AuditService, events: list[events_pb2.AuditEvent], first_seq: int
) -> int:
    """Ingest in stream batches of 250; returns the next stream sequence."""
    for start in range(0, len(events), 250):
        batch = [
            Incoming("audit.itest.x", event.SerializeToString(), first_seq + start + offset)
            for offset, event in enumerate(events[start : start + 250])
        ]
        assert await service.ingest(batch) == len(batch)
    return first_seq + len(events)


async def _build_log(audit_service: AuditService, servers: Any, make_event: MakeEvent) -> Log:
    """2,500 events of one org (every tenth row of another org in between), sealed after 1,200
    and after 2,500 (by a Helios service), then 40 more in the time range left unsealed."""
    org, other = str(uuid.uuid4()), str(uuid.uuid4())
    events = [make_event(org_id=org, occurred_at=_occurred(i)) for i in range(SEALED + 40)]
    seq = 1
    for start, stop in ((0, FIRST_SEAL), (FIRST_SEAL, SEALED)):
        batch: list[events_pb2.AuditEvent] = []
        for index in range(start, stop):
            batch.append(events[index])
            if index % 10 == 0:
                batch.append(make_event(org_id=other, occurred_at=_occurred(index)))
        seq = await _ingest(audit_service, batch, seq)
        for org_id in (org, other):
            await servers.audit["identity"].SealCheckpoint(
                audit_pb2.SealCheckpointRequest(org_id=org_id), timeout=30
            )
    late = [e for i, e in enumerate(events) if i >= SEALED]
    await _ingest(audit_service, late, seq)
    matching = [i for i in range(SEALED) if _in_range(i)]
    return Log(org, other, events, matching[0], matching[-1] + 1)


def _request(log: Log, cursor: str = "") -> audit_pb2.ExportEventsRequest:
    request = audit_pb2.ExportEventsRequest(org_id=log.org_id, cursor=cursor)
    request.since.FromDatetime(SINCE)
    request.until.FromDatetime(UNTIL)
    return request


async def _export(
    servers: Any, log: Log, cursor: str = "", stop_after: int | None = None
) -> list[audit_pb2.ExportEventsResponse]:
    """The messages of one ExportEvents call by a user of the org (through the gateway's
    certificate); with `stop_after`, the client reads that many and hangs up."""
    call = servers.audit["gateway"].ExportEvents(
        _request(log, cursor), metadata=servers.as_user(log.org_id), timeout=60
    )
    messages: list[audit_pb2.ExportEventsResponse] = []
    while stop_after is None or len(messages) < stop_after:
        message = await call.read()
        if message is grpc.aio.EOF:
            break
        messages.append(message)
    call.cancel()
    return messages


async def _jwks_file(servers: Any, org_id: str, path: Path) -> Path:
    """Keyvault's public keys of the checkpoint key, asked of keyvault itself (not the bundle's
    own `jwks`), as a JWKS file."""
    latest = await servers.audit["identity"].GetCheckpoint(
        audit_pb2.GetCheckpointRequest(org_id=org_id), timeout=10
    )
    reply = await servers.keyvault.GetPublicKey(
        keyvault_pb2.GetPublicKeyRequest(
            org_id="", key_id=latest.checkpoint.key_id.partition(":")[0]
        ),
        timeout=10,
    )
    keys = [{"kid": k.kid, "kty": k.kty, "crv": k.crv, "x": k.x} for k in reply.keys]
    return _written(path, json.dumps({"keys": keys}).encode())


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _verify(bundle: Path, jwks: Path) -> subprocess.CompletedProcess[str]:
    """`python -m helios.audit verify --bundle FILE --jwks JWKS`: no database, no keyvault."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "helios.audit",
            "verify",
            "--bundle",
            str(bundle),
            "--jwks",
            str(jwks),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _lines(data: bytes) -> list[bytes]:
    text = gzip.decompress(data)
    assert text.endswith(b"\n")
    return text[:-1].split(b"\n")


def _assert_progress(messages: list[audit_pb2.ExportEventsResponse], total: int) -> None:
    done = [m.events_done for m in messages]
    assert all(m.events_total == total for m in messages)
    assert done == sorted(done)
    assert len(set(done)) == len(done)
    assert done[-1] == total
    assert [bool(m.cursor) for m in messages] == [True] * (len(messages) - 1) + [False]


async def test_l2_exported_time_range_verifies_offline_and_a_modified_copy_fails(
    servers: Any,
    audit_service: AuditService,
    make_event: MakeEvent,
    tmp_path: Path,
) -> None:
    """L2: a user of the org exports a time range: each message is one gzip member of at most
    CHUNK_EVENTS events with progress; the concatenation is a bundle of exactly the sealed slice
    [first, last] index in the range (arrival order: late events inside it come along; unsealed
    ones never), with both checkpoints; `verify --bundle` with keyvault's JWKs exits 0, and 1
    once one field of one event line is changed."""
    log = await _build_log(audit_service, servers, make_event)
    messages = await _export(servers, log)
    total = log.hi - log.lo
    assert len(messages) == -(-total // CHUNK_EVENTS) >= 3
    _assert_progress(messages, total)

    members = [_lines(m.chunk) for m in messages]  # every chunk is a whole gzip member
    header = json.loads(members[0][0])
    assert (header["org_id"], header["range"], header["tree_size"]) == (
        log.org_id,
        [log.lo, log.hi],
        SEALED,
    )
    assert [len(lines) for lines in members[1:-1]] == [CHUNK_EVENTS] * (len(members) - 2)
    bundle = b"".join(m.chunk for m in messages)
    lines = _lines(bundle)
    records = [json.loads(line) for line in lines[1 : 1 + total]]
    assert [r["index"] for r in records] == list(range(log.lo, log.hi))
    assert [r["event_id"] for r in records] == [e.event_id for e in log.events[log.lo : log.hi]]
    assert {r["org_id"] for r in records} == {log.org_id}
    assert any(not _in_range(r["index"]) for r in records)  # late arrivals inside the slice
    trailers = [json.loads(line) for line in lines[1 + total :]]
    assert [next(iter(t)) for t in trailers] == ["checkpoint", "checkpoint", "jwks", "complement"]
    assert [t["checkpoint"]["tree_size"] for t in trailers[:2]] == [FIRST_SEAL, SEALED]

    path = _written(tmp_path / "export.jsonl.gz", bundle)
    jwks = await _jwks_file(servers, log.org_id, tmp_path / "jwks.json")
    verified = _verify(path, jwks)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"org {log.org_id}, indexes {log.lo}..{log.hi - 1}: OK" in verified.stdout

    # one field of one event line in the second member, the line kept canonical
    edited = [list(lines) for lines in members]
    before = edited[1][500]
    edited[1][500] = before.replace(b'"ip":"203.0.113.7"', b'"ip":"203.0.113.8"')
    assert edited[1][500] != before
    copy = b"".join(gzip.compress(b"".join(line + b"\n" for line in m)) for m in edited)
    modified = _written(tmp_path / "modified.jsonl.gz", copy)
    tampered = _verify(modified, jwks)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "TAMPERED" in tampered.stdout


async def test_l2_resumed_export_adds_up_to_the_same_verifying_bundle(
    servers: Any,
    audit_service: AuditService,
    make_event: MakeEvent,
    tmp_path: Path,
) -> None:
    """L2: a client that hangs up after the second message and calls again with that message's
    cursor gets the rest: the chunks of both calls, concatenated, are the uninterrupted export's
    bytes and verify offline; progress goes on from where it stopped."""
    log = await _build_log(audit_service, servers, make_event)
    whole = await _export(servers, log)
    first = await _export(servers, log, stop_after=2)
    assert len(first) == 2
    rest = await _export(servers, log, cursor=first[-1].cursor)
    assert rest
    assert rest[0].events_done > first[-1].events_done
    resumed = first + rest
    _assert_progress(resumed, log.hi - log.lo)

    bundle = b"".join(m.chunk for m in resumed)
    assert bundle == b"".join(m.chunk for m in whole)
    path = _written(tmp_path / "resumed.jsonl.gz", bundle)
    verified = _verify(path, await _jwks_file(servers, log.org_id, tmp_path / "jwks.json"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def _refused(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() == code, refused.value.details()
    return refused.value.details() or ""


async def test_l2_export_refusals(
    servers: Any,
    audit_service: AuditService,
    db_session: async_sessionmaker[AsyncSession],
    keyvault_signer: KeyvaultSigner,
    make_event: MakeEvent,
) -> None:
    """L2: nothing sealed yet is FAILED_PRECONDITION ("seal a checkpoint first"); a user of
    another org, a user without an org and a caller that is no Helios service are
    PERMISSION_DENIED; a cursor of another org's export, a corrupted cursor and since not before
    until are INVALID_ARGUMENT; a range without a sealed event is NOT_FOUND."""
    org, other = str(uuid.uuid4()), str(uuid.uuid4())
    stub = servers.audit["gateway"]
    mine = servers.as_user(org)
    export = audit_pb2.ExportEventsRequest(org_id=org)
    await _ingest(
        audit_service, [make_event(org_id=org, occurred_at=_occurred(i)) for i in range(6)], 1
    )
    details = await _refused(
        stub.ExportEvents(export, metadata=mine, timeout=10), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "seal a checkpoint first" in details

    await _ingest(audit_service, [make_event(org_id=other) for _ in range(6)], 100)
    for org_id in (org, other):
        await servers.audit["identity"].SealCheckpoint(
            audit_pb2.SealCheckpointRequest(org_id=org_id), timeout=10
        )
    # a genuine cursor of the other org's export (small members, so there is one)
    exports = ExportService(
        PgTreeStore(db_session), PgLogReader(db_session), keyvault_signer, chunk_events=2
    )
    theirs = [c async for c in exports.export(AS_SERVICE, other, None, None)]
    assert len(theirs) == 3
    mine_chunks = [c async for c in exports.export(AS_SERVICE, org, None, None)]
    cursor = mine_chunks[0].cursor

    denied = grpc.StatusCode.PERMISSION_DENIED
    for metadata, caller in ((servers.as_user(other), stub), (servers.as_user(""), stub)):
        await _refused(caller.ExportEvents(export, metadata=metadata, timeout=10), denied)
    await _refused(servers.audit["client"].ExportEvents(export, timeout=10), denied)

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    corrupted = cursor[:8] + ("A" if cursor[8] != "A" else "B") + cursor[9:]
    for bad in (theirs[0].cursor, corrupted, cursor[:-3], "x" * 600):
        request = audit_pb2.ExportEventsRequest(org_id=org, cursor=bad)
        details = await _refused(stub.ExportEvents(request, metadata=mine, timeout=10), invalid)
        assert "cursor" in details
    backwards = audit_pb2.ExportEventsRequest(org_id=org)
    backwards.since.FromDatetime(BASE + dt.timedelta(hours=2))
    backwards.until.FromDatetime(BASE + dt.timedelta(hours=1))
    await _refused(stub.ExportEvents(backwards, metadata=mine, timeout=10), invalid)

    empty = audit_pb2.ExportEventsRequest(org_id=org)
    empty.since.FromDatetime(BASE + dt.timedelta(days=30))
    await _refused(stub.ExportEvents(empty, metadata=mine, timeout=10), grpc.StatusCode.NOT_FOUND)

    # the genuine cursor of this org resumes over gRPC
    request = audit_pb2.ExportEventsRequest(org_id=org, cursor=cursor)
    resumed = [m async for m in stub.ExportEvents(request, metadata=mine, timeout=10)]
    assert gzip.decompress(b"".join(m.chunk for m in resumed)) == gzip.decompress(
        b"".join(c.chunk for c in mine_chunks[1:])
    )
