"""The S3 object store through boto3 against moto's ThreadedMotoServer, and attachments stored
in S3 (E5).

No S3 service can run here: moto's server is a stand-in that speaks the S3 HTTP API (bucket and
object calls, multipart uploads) on a local port, so the real boto3 client and the real
S3ObjectStore code path run unchanged against it.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, NotFoundError
from helios.keyvault.attachments import AttachmentService
from helios.keyvault.domain.ciphertext import CiphertextError
from helios.keyvault.domain.material import Algorithm
from helios.keyvault.domain.model import PURPOSE_ENCRYPTION
from helios.keyvault.domain.streaming import TAG_SIZE, parse_object_header
from helios.keyvault.object_store import MIN_PART_SIZE, ObjectStore, S3ObjectStore
from helios.keyvault.seal import LocalSeal
from helios.keyvault.service import KeyvaultService
from helios.keyvault.store import tables
from helios.keyvault.store.postgres import postgres_unit_of_work
from helios.proto.common.v1 import principal_pb2

MiB = 1024 * 1024
BUCKET = "helios-attachments"
ORG = str(uuid.uuid4())


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 stand-in on an ephemeral local port, for this module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    """A boto3 S3 client on the stand-in with a fresh bucket for the test."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.helios_bucket = bucket  # type: ignore[attr-defined]
    return client


def _store(s3: Any, **kwargs: Any) -> S3ObjectStore:
    return S3ObjectStore(s3, s3.helios_bucket, prefix="attachments", **kwargs)


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _drain(chunks: AsyncIterator[bytes], into: bytearray) -> None:
    async for chunk in chunks:
        into += chunk


async def _read(store: ObjectStore, name: str) -> bytes:
    return b"".join([chunk async for chunk in store.get_stream(name)])


async def test_e5_s3_store_small_and_multipart_round_trips(s3: Any) -> None:
    """A small object goes up in one PutObject, a large one part by part (three parts of at
    least 5 MiB but the last); both read back exactly, in read-size chunks, under the prefix."""
    store = _store(s3, part_size=MIN_PART_SIZE, read_size=MiB)
    small = b"a small object"
    large = random.Random(3).randbytes(2 * MIN_PART_SIZE + 12345)
    assert await store.put_stream("org/small", _chunks(small, 5)) == len(small)
    assert await store.put_stream("org/large", _chunks(large, 700_000)) == len(large)
    assert await _read(store, "org/small") == small
    chunks = [chunk async for chunk in store.get_stream("org/large")]
    assert b"".join(chunks) == large
    assert max(len(c) for c in chunks) <= MiB
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3.helios_bucket)["Contents"])
    assert keys == ["attachments/org/large", "attachments/org/small"]
    parts = s3.head_object(Bucket=s3.helios_bucket, Key="attachments/org/large", PartNumber=1)
    assert parts["PartsCount"] == 3
    assert await store.exists("org/large")
    assert await store.delete("org/large")
    assert not await store.delete("org/large")
    assert not await store.exists("org/large")
    with pytest.raises(NotFoundError):
        await _read(store, "org/large")


async def test_e5_s3_failed_upload_is_aborted(s3: Any) -> None:
    """A source failing after a part was uploaded aborts the multipart upload: no object, no
    pending upload, and an older object under the name is untouched."""
    store = _store(s3, part_size=MIN_PART_SIZE)
    await store.put_stream("org/doc", _chunks(b"old", 3))

    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * (MIN_PART_SIZE + 1)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="went away"):
        await store.put_stream("org/doc", failing())
    with pytest.raises(RuntimeError, match="went away"):
        await store.put_stream("org/new", failing())
    assert s3.list_multipart_uploads(Bucket=s3.helios_bucket).get("Uploads", []) == []
    assert await _read(store, "org/doc") == b"old"
    assert not await store.exists("org/new")


async def test_e5_s3_store_refuses_unsafe_names(s3: Any) -> None:
    """Traversal-looking keys are refused before any request, like the local store's; so is a
    part size S3 would refuse."""
    store = _store(s3)
    for name in ["../escape", "org/../x", "/abs", "org//x", ""]:
        with pytest.raises(InvalidArgumentError):
            await store.put_stream(name, _chunks(b"x", 1))
        with pytest.raises(InvalidArgumentError):
            await store.exists(name)
    assert "Contents" not in s3.list_objects_v2(Bucket=s3.helios_bucket)
    with pytest.raises(ValueError, match="5 MiB"):
        S3ObjectStore(s3, s3.helios_bucket, part_size=MiB)


async def test_e5_attachment_in_s3_round_trip_and_tampering_refused(
    s3: Any,
    keyvault_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    seal_dir: Path,
) -> None:
    """AttachmentService over the S3 store: the content comes back; the stored object holds no
    plaintext; with two segments swapped in the bucket, reading stops with CiphertextError
    after the verified first segment; an attachment over the size limit is refused and not
    stored; delete removes the object."""
    uow = postgres_unit_of_work(db_session, AuditRecorder("keyvault", tables.outbox), utc_now)
    keyvault = KeyvaultService(uow, LocalSeal.from_key_file(seal_dir / "root.key"), utc_now)
    store = _store(s3)
    attachments = AttachmentService(keyvault, store, uow)
    ctx = CallContext(
        caller="gateway",
        principal=principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=str(uuid.uuid4()), org_id=ORG
        ),
    )
    key = await keyvault.create_key(
        ctx, ORG, "attachments", PURPOSE_ENCRYPTION, Algorithm.AES_256_GCM
    )
    data = random.Random(4).randbytes(3 * MiB + 99)
    info = await attachments.put(ctx, ORG, str(key.id), "scan.tiff", _chunks(data, 400_000))
    assert (info.size, info.segments, info.key_id, info.key_version) == (len(data), 4, key.id, 1)
    assert b"".join([c async for c in attachments.get(ctx, ORG, "scan.tiff")]) == data

    object_key = f"attachments/{ORG}/scan.tiff"
    blob = s3.get_object(Bucket=s3.helios_bucket, Key=object_key)["Body"].read()
    assert data[:64] not in blob
    parsed = parse_object_header(blob)
    assert parsed is not None
    header, offset = parsed
    step = header.segment_size + TAG_SIZE
    first, second = (
        blob[offset + step : offset + 2 * step],
        blob[offset + 2 * step : offset + 3 * step],
    )
    swapped = blob[: offset + step] + second + first + blob[offset + 3 * step :]
    s3.put_object(Bucket=s3.helios_bucket, Key=object_key, Body=swapped)
    received = bytearray()
    with pytest.raises(CiphertextError):
        await _drain(attachments.get(ctx, ORG, "scan.tiff"), received)
    assert bytes(received) == data[:MiB]

    capped = AttachmentService(keyvault, store, uow, max_bytes=MiB)
    with pytest.raises(InvalidArgumentError, match="limited"):
        await capped.put(ctx, ORG, str(key.id), "too-big", _chunks(data, 400_000))
    assert not await store.exists(f"{ORG}/too-big")

    await attachments.delete(ctx, ORG, "scan.tiff")
    assert not await store.exists(f"{ORG}/scan.tiff")
    with pytest.raises(NotFoundError):
        await attachments.delete(ctx, ORG, "scan.tiff")
