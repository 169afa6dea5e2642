"""Attachments over gRPC against real PostgreSQL (E5): a 200 MiB streamed round trip in bounded
memory; truncated, reordered, moved or foreign objects refused; delete shreds."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.principal import (
    AssertionSigner,
    AssertionVerifier,
    load_private_key,
    load_public_key,
)
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.keyvault.attachments import AttachmentService
from helios.keyvault.domain.streaming import TAG_SIZE, parse_object_header
from helios.keyvault.object_store import LocalObjectStore
from helios.keyvault.rpc.attachments import AttachmentRpc
from helios.keyvault.rpc.servicer import KeyvaultServicer
from helios.keyvault.seal import LocalSeal
from helios.keyvault.service import KeyvaultService
from helios.keyvault.store import tables
from helios.keyvault.store.postgres import postgres_unit_of_work
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.keyvault.v1 import keyvault_pb2 as kv
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

SERVICE = "helios.proto.keyvault.v1.KeyvaultService"
ORG_A, ORG_B = str(uuid.uuid4()), str(uuid.uuid4())
MiB = 1024 * 1024
BIG = 200 * MiB
MEMORY_BUDGET = 64 * MiB


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Servicer(KeyvaultServicer):
    """The key RPCs and the attachment RPCs (no platform secrets) for these tests. Assigning the
    attachment methods explicitly keeps this right whether or not KeyvaultServicer already has
    AttachmentRpc among its bases."""

    PutAttachment = AttachmentRpc.PutAttachment
    GetAttachment = AttachmentRpc.GetAttachment
    DeleteAttachment = AttachmentRpc.DeleteAttachment

    def __init__(self, service: KeyvaultService, attachments: AttachmentService) -> None:
        self._service = service
        self._attachments = attachments


@dataclass
class Server:
    """A keyvault server with attachments in a local object store under `objects`."""

    port: int
    pki: dict[str, CertFiles]
    signer: AssertionSigner
    objects: Path
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def as_user(self, org_id: str) -> tuple[Any, Any]:
        """A stub (through the gateway's identity) and the metadata of a user of `org_id`."""
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=str(uuid.uuid4()),
            org_id=org_id,
            session_id=str(uuid.uuid4()),
        )
        channel = secure_channel(f"localhost:{self.port}", self.pki["gateway"])
        self.channels.append(channel)
        stub = keyvault_pb2_grpc.KeyvaultServiceStub(channel)
        return stub, call_metadata(assertion=self.signer.sign(principal))

    def object_path(self, org_id: str, attachment_id: str) -> Path:
        """Where the local store keeps an attachment."""
        return self.objects / org_id / attachment_id


@pytest.fixture
async def server(
    keyvault_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    seal_dir: Path,
    tmp_path: Path,
) -> AsyncIterator[Server]:
    """Keyvault wired as in wiring.py plus AttachmentService over a local object store."""
    uow = postgres_unit_of_work(db_session, AuditRecorder("keyvault", tables.outbox), utc_now)
    service = KeyvaultService(uow, LocalSeal.from_key_file(seal_dir / "root.key"), utc_now)
    objects = tmp_path / "objects"
    attachments = AttachmentService(service, LocalObjectStore(objects), uow)
    servicer = _Servicer(service, attachments)
    grpc_service = GrpcService(
        "keyvault", pki["keyvault"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    grpc_service.add_service(
        SERVICE, lambda s: keyvault_pb2_grpc.add_KeyvaultServiceServicer_to_server(servicer, s)
    )
    port = await grpc_service.start("127.0.0.1", 0)
    running = Server(
        port=port,
        pki=pki,
        signer=AssertionSigner(load_private_key(principal_keys[0])),
        objects=objects,
    )
    yield running
    for channel in running.channels:
        await channel.close()
    await grpc_service.stop(0)


async def _key(
    stub: Any, meta: Any, purpose: kv.KeyPurpose.ValueType = kv.KEY_PURPOSE_ENCRYPTION
) -> str:
    algorithm = (
        kv.KEY_ALGORITHM_AES_256_GCM
        if purpose == kv.KEY_PURPOSE_ENCRYPTION
        else kv.KEY_ALGORITHM_ED25519
    )
    reply = await stub.CreateKey(
        kv.CreateKeyRequest(name=f"k{uuid.uuid4().hex[:8]}", purpose=purpose, algorithm=algorithm),
        metadata=meta,
    )
    return str(reply.key.key_id)


def _source(size: int, seed: int, chunk: int = MiB) -> Iterator[bytes]:
    """`size` pseudo-random bytes, `chunk` at a time: never held whole."""
    rng = random.Random(seed)
    left = size
    while left:
        piece = min(chunk, left)
        yield rng.randbytes(piece)
        left -= piece


async def _upload(
    chunks: Iterator[bytes], key_id: str, attachment_id: str, digest: Any = None
) -> AsyncIterator[kv.PutAttachmentRequest]:
    yield kv.PutAttachmentRequest(
        target=kv.AttachmentTarget(key_id=key_id, attachment_id=attachment_id)
    )
    for chunk in chunks:
        if digest is not None:
            digest.update(chunk)
        yield kv.PutAttachmentRequest(chunk=chunk)


async def _put(
    stub: Any, meta: Any, key_id: str, attachment_id: str, data: bytes
) -> kv.PutAttachmentResponse:
    pieces = iter([data[i : i + 300_000] for i in range(0, len(data), 300_000)])
    reply: kv.PutAttachmentResponse = await stub.PutAttachment(
        _upload(pieces, key_id, attachment_id), metadata=meta
    )
    return reply


async def _get(
    stub: Any, meta: Any, attachment_id: str
) -> tuple[bytes, grpc.aio.AioRpcError | None]:
    """What GetAttachment sent before it ended, and the error it ended with (None: OK)."""
    received = bytearray()
    try:
        async for reply in stub.GetAttachment(
            kv.GetAttachmentRequest(attachment_id=attachment_id), metadata=meta
        ):
            received += reply.chunk
    except grpc.aio.AioRpcError as exc:
        return bytes(received), exc
    return bytes(received), None


async def _refused(call: Awaitable[Any], code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return refused.value.details() or ""


def _entries(folder: Path) -> list[str]:
    """Names in `folder` (none if it does not exist)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current resident size (Linux: writing 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def _rss_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field_name} not in /proc/self/status")


async def test_e5_200_mib_round_trip_in_bounded_memory(server: Server) -> None:
    """E5 acceptance: 200 MiB of pseudo-random bytes, generated 1 MiB at a time, go up through
    PutAttachment and come back through GetAttachment with the same SHA-256, while the peak
    memory growth stays under 64 MiB.

    Memory is measured two ways over the same transfer, client and in-process server together:
    tracemalloc's peak of Python allocations (bytes objects, protobuf messages, buffers: what
    would grow if the file were held whole), and the process's resident set high-water mark
    (VmHWM, reset through /proc/self/clear_refs just before), which also counts gRPC's C-core
    buffers and the allocator's slack that tracemalloc cannot see."""
    stub, meta = server.as_user(ORG_A)
    key_id = await _key(stub, meta)
    sent = hashlib.sha256()

    _reset_peak_rss()
    rss_before = _rss_kib("VmRSS")
    tracemalloc.start()
    tracemalloc.reset_peak()
    python_before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    try:
        reply = await stub.PutAttachment(
            _upload(_source(BIG, seed=5), key_id, "big.bin", sent), metadata=meta
        )
        uploaded = time.perf_counter()
        back = hashlib.sha256()
        size = 0
        async for message in stub.GetAttachment(
            kv.GetAttachmentRequest(attachment_id="big.bin"), metadata=meta
        ):
            back.update(message.chunk)
            size += len(message.chunk)
        python_peak = tracemalloc.get_traced_memory()[1] - python_before
    finally:
        tracemalloc.stop()
    downloaded = time.perf_counter()
    rss_growth = (_rss_kib("VmHWM") - rss_before) * 1024

    assert reply.size_bytes == BIG
    assert reply.segment_count == 200
    assert reply.key_id == key_id
    assert reply.key_version == 1
    assert size == BIG
    assert back.hexdigest() == sent.hexdigest()
    stored = server.object_path(ORG_A, "big.bin").stat().st_size
    assert BIG + 200 * TAG_SIZE < stored < BIG + 200 * TAG_SIZE + 2048
    print(
        f"\nE5 200 MiB: put {uploaded - started:.1f}s, get {downloaded - uploaded:.1f}s, "
        f"python peak +{python_peak / MiB:.1f} MiB, rss peak +{rss_growth / MiB:.1f} MiB"
    )
    assert python_peak < MEMORY_BUDGET
    assert rss_growth < MEMORY_BUDGET


async def test_e5_small_and_empty_attachments_round_trip(server: Server) -> None:
    """An empty attachment, one byte, and a few segments with odd chunking come back exactly;
    the stored object never contains the plaintext."""
    stub, meta = server.as_user(ORG_A)
    key_id = await _key(stub, meta)
    secret = b"the quarterly figures, not yet public: " * 100_000
    for attachment_id, data in [("empty", b""), ("one", b"x"), ("few", secret)]:
        reply = await _put(stub, meta, key_id, attachment_id, data)
        assert reply.size_bytes == len(data)
        assert reply.segment_count == max(1, -(-len(data) // MiB))
        received, error = await _get(stub, meta, attachment_id)
        assert error is None
        assert received == data
    assert b"the quarterly figures" not in server.object_path(ORG_A, "few").read_bytes()


async def test_e5_truncated_object_refused_after_a_verified_prefix_only(server: Server) -> None:
    """Dropping the final segment of the stored object: GetAttachment ends with
    INVALID_ARGUMENT, and what it sent before is a true prefix of the content (every segment is
    verified before it is sent). Cutting one byte behaves the same."""
    stub, meta = server.as_user(ORG_A)
    key_id = await _key(stub, meta)
    data = random.Random(1).randbytes(3 * MiB + 12345)
    await _put(stub, meta, key_id, "doc", data)
    path = server.object_path(ORG_A, "doc")
    original = path.read_bytes()

    path.write_bytes(original[: -(12345 + TAG_SIZE)])
    received, error = await _get(stub, meta, "doc")
    assert error is not None
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert len(received) < len(data)
    assert data.startswith(received)

    path.write_bytes(original[:-1])
    received, error = await _get(stub, meta, "doc")
    assert error is not None
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert data.startswith(received)
    assert len(received) == 3 * MiB

    path.write_bytes(original)
    assert await _get(stub, meta, "doc") == (data, None)


async def test_e5_swapped_segments_refused_before_bad_data(server: Server) -> None:
    """Swapping two segments of the stored object: the stream stops with INVALID_ARGUMENT at
    the first moved segment; nothing out of place is ever sent."""
    stub, meta = server.as_user(ORG_A)
    key_id = await _key(stub, meta)
    data = random.Random(2).randbytes(4 * MiB)
    await _put(stub, meta, key_id, "doc", data)
    path = server.object_path(ORG_A, "doc")
    blob = path.read_bytes()
    parsed = parse_object_header(blob)
    assert parsed is not None
    header, offset = parsed
    step = header.segment_size + TAG_SIZE
    segments = [blob[offset + i * step : offset + (i + 1) * step] for i in range(4)]
    path.write_bytes(blob[:offset] + segments[0] + segments[2] + segments[1] + segments[3])

    received, error = await _get(stub, meta, "doc")
    assert error is not None
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert received == data[:MiB]


async def test_e5_object_moved_to_another_id_or_org_does_not_open(server: Server) -> None:
    """The data key and the stream key are bound to org and attachment id: an object copied
    under another id, or into another org's folder, is refused (and another org cannot even see
    the original)."""
    stub, meta = server.as_user(ORG_A)
    key_id = await _key(stub, meta)
    data = b"board minutes " * 1000
    await _put(stub, meta, key_id, "minutes", data)
    blob = server.object_path(ORG_A, "minutes").read_bytes()

    server.object_path(ORG_A, "copy").write_bytes(blob)
    received, error = await _get(stub, meta, "copy")
    assert error is not None
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert received == b""

    stub_b, meta_b = server.as_user(ORG_B)
    received, error = await _get(stub_b, meta_b, "minutes")
    assert error is not None
    assert error.code() == grpc.StatusCode.NOT_FOUND
    server.object_path(ORG_B, "minutes").parent.mkdir(mode=0o700)
    server.object_path(ORG_B, "minutes").write_bytes(blob)
    received, error = await _get(stub_b, meta_b, "minutes")
    assert error is not None
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert received == b""


async def test_e5_put_refusals(server: Server) -> None:
    """A stream without its target first, a second target, a taken id, an unsafe id, another
    org, a signing key and an unknown key are refused with clear codes; none leaves an object."""
    stub, meta = server.as_user(ORG_A)
    key_id = await _key(stub, meta)
    signing = await _key(stub, meta, kv.KEY_PURPOSE_SIGNING)

    async def chunk_first() -> AsyncIterator[kv.PutAttachmentRequest]:
        yield kv.PutAttachmentRequest(chunk=b"data before the target")

    async def two_targets() -> AsyncIterator[kv.PutAttachmentRequest]:
        target = kv.AttachmentTarget(key_id=key_id, attachment_id="twice")
        yield kv.PutAttachmentRequest(target=target)
        yield kv.PutAttachmentRequest(chunk=b"data")
        yield kv.PutAttachmentRequest(target=target)

    async def nothing() -> AsyncIterator[kv.PutAttachmentRequest]:
        return
        yield

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    await _refused(stub.PutAttachment(chunk_first(), metadata=meta), invalid)
    await _refused(stub.PutAttachment(nothing(), metadata=meta), invalid)
    await _refused(stub.PutAttachment(two_targets(), metadata=meta), invalid)
    assert not server.object_path(ORG_A, "twice").exists()
    for bad in ["../escape", "", ".hidden", "a/b"]:
        await _refused(_put(stub, meta, key_id, bad, b"x"), invalid)

    await _put(stub, meta, key_id, "taken", b"first")
    await _refused(_put(stub, meta, key_id, "taken", b"second"), grpc.StatusCode.ALREADY_EXISTS)
    assert await _get(stub, meta, "taken") == (b"first", None)

    async def other_org() -> AsyncIterator[kv.PutAttachmentRequest]:
        yield kv.PutAttachmentRequest(
            target=kv.AttachmentTarget(org_id=ORG_B, key_id=key_id, attachment_id="x")
        )

    await _refused(
        stub.PutAttachment(other_org(), metadata=meta), grpc.StatusCode.PERMISSION_DENIED
    )
    await _refused(_put(stub, meta, signing, "signed", b"x"), grpc.StatusCode.FAILED_PRECONDITION)
    await _refused(_put(stub, meta, str(uuid.uuid4()), "nokey", b"x"), grpc.StatusCode.NOT_FOUND)
    stub_b, meta_b = server.as_user(ORG_B)
    await _refused(_put(stub_b, meta_b, key_id, "foreign", b"x"), grpc.StatusCode.NOT_FOUND)
    assert sorted(p.name for p in (server.objects / ORG_A).iterdir()) == ["taken"]
    assert not (server.objects / ORG_B).exists()


async def test_e5_delete_shreds_and_is_audited(
    server: Server, db_connection: AsyncConnection
) -> None:
    """DeleteAttachment removes the object (and the only stored wrapped data key): the
    attachment is gone, a second delete is NOT_FOUND, another org cannot delete it, and put and
    delete are in the audit outbox."""
    stub, meta = server.as_user(ORG_A)
    key_id = await _key(stub, meta)
    await _put(stub, meta, key_id, "gone", b"to be shredded")
    stub_b, meta_b = server.as_user(ORG_B)
    await _refused(
        stub_b.DeleteAttachment(kv.DeleteAttachmentRequest(attachment_id="gone"), metadata=meta_b),
        grpc.StatusCode.NOT_FOUND,
    )
    assert server.object_path(ORG_A, "gone").exists()
    await stub.DeleteAttachment(kv.DeleteAttachmentRequest(attachment_id="gone"), metadata=meta)
    assert not server.object_path(ORG_A, "gone").exists()
    received, error = await _get(stub, meta, "gone")
    assert error is not None
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert received == b""
    await _refused(
        stub.DeleteAttachment(kv.DeleteAttachmentRequest(attachment_id="gone"), metadata=meta),
        grpc.StatusCode.NOT_FOUND,
    )
    payloads = (
        (await db_connection.execute(text("SELECT payload FROM keyvault.outbox"))).scalars().all()
    )
    events = [events_pb2.AuditEvent.FromString(p) for p in payloads]
    mine = [(e.action, e.resource_id) for e in events if e.action.startswith("keyvault.attachment")]
    assert mine == [("keyvault.attachment.put", "gone"), ("keyvault.attachment.delete", "gone")]
    assert all(b"to be shredded" not in p for p in payloads)


async def test_e5_upload_cancelled_midway_stores_nothing(server: Server) -> None:
    """A client that gives up after a few megabytes (it cancels the call while the object is
    being written) leaves no attachment and no temporary file: only a whole stream is stored."""
    stub, meta = server.as_user(ORG_A)
    key_id = await _key(stub, meta)
    sent = asyncio.Event()

    async def unfinished() -> AsyncIterator[kv.PutAttachmentRequest]:
        async for message in _upload(_source(3 * MiB, seed=6), key_id, "partial"):
            yield message
        sent.set()
        await asyncio.Event().wait()

    call = stub.PutAttachment(unfinished(), metadata=meta)
    await sent.wait()
    # Cancel once the server is writing (past its database work, which shares this test's
    # connection): a temporary upload file exists.
    for _ in range(100):
        if _entries(server.objects / ORG_A):
            break
        await asyncio.sleep(0.02)
    assert [name.startswith(".upload-") for name in _entries(server.objects / ORG_A)] == [True]
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    for _ in range(100):
        if not _entries(server.objects / ORG_A):
            break
        await asyncio.sleep(0.02)
    assert _entries(server.objects / ORG_A) == []
    received, error = await _get(stub, meta, "partial")
    assert error is not None
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert received == b""
