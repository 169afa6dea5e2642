"""Keyvault figures: Encrypt over gRPC vs a no-op call; row helper and streaming vs raw AES-GCM."""

from __future__ import annotations

import os
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import Figure, measure
from helios.devstack.stack import Stack
from helios.kernel.clients import secure_channel
from helios.kernel.row_secrets import GrpcDataKeyClient, RowCipher
from helios.keyvault.domain.streaming import SEGMENT_SIZE, StreamSealer
from helios.proto.keyvault.v1 import keyvault_pb2 as kv
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

__all__ = ["keyvault_figures"]

KV_BASELINE = "grpc keyvault Health/Check"
AES_BASELINE = "raw AESGCM encrypt 1 KiB"
STREAM_BASELINE = "raw AESGCM encrypt 1 MiB"
TIMEOUT = 60.0


async def keyvault_figures(stack: Stack, calls: int, concurrency: int) -> list[Figure]:
    """Encrypt (1 KiB) through keyvault's interceptor chain and database counters vs its
    Health/Check; RowCipher.encrypt (data key cached) vs AESGCM.encrypt in this process."""
    org = str(uuid.uuid4())
    payload = os.urandom(1024)
    context = kv.AadContext(table="bench", row_id="1", column="value")
    target = f"localhost:{stack.ports['keyvault']}"
    async with secure_channel(target, stack.certs("identity")) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = keyvault_pb2_grpc.KeyvaultServiceStub(channel)
        key = await stub.CreateKey(
            kv.CreateKeyRequest(
                org_id=org,
                name="bench",
                purpose=kv.KEY_PURPOSE_ENCRYPTION,
                algorithm=kv.KEY_ALGORITHM_AES_256_GCM,
            )
        )
        request = kv.EncryptRequest(
            org_id=org, key_id=key.key.key_id, plaintext=payload, context=context
        )

        async def check() -> None:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)  # type: ignore[attr-defined]

        async def encrypt() -> None:
            reply = await stub.Encrypt(request, timeout=TIMEOUT)
            if not reply.ciphertext:
                raise RuntimeError("Encrypt answered no ciphertext")

        figures = [
            await measure(KV_BASELINE, check, calls, concurrency, KV_BASELINE),
            await measure("grpc keyvault Encrypt 1 KiB", encrypt, calls, concurrency, KV_BASELINE),
        ]
        rows = RowCipher(GrpcDataKeyClient(stub), lambda _org: key.key.key_id)
        aead = AESGCM(os.urandom(32))
        row = [0]

        async def raw() -> None:
            aead.encrypt(os.urandom(12), payload, b"bench")

        async def helper() -> None:
            row[0] += 1
            await rows.encrypt(org, "bench", "value", str(row[0]), payload)

        figures.append(await measure(AES_BASELINE, raw, calls * 10, 1, AES_BASELINE))
        figures.append(
            await measure("RowCipher encrypt 1 KiB", helper, calls * 10, 1, AES_BASELINE)
        )
    return [*figures, *await streaming_figures()]


async def streaming_figures(segments: int = 256) -> list[Figure]:
    """Attachment streaming (E5) vs raw AES-GCM over 1 MiB blocks: calls/s is MiB/s."""
    block = os.urandom(SEGMENT_SIZE)
    aead = AESGCM(os.urandom(32))
    sealer = StreamSealer(os.urandom(32), b"bench-attachment")

    async def raw() -> None:
        aead.encrypt(os.urandom(12), block, None)

    async def stream() -> None:
        sealer.seal_segment(block, last=False)

    return [
        await measure(STREAM_BASELINE, raw, segments, 1, STREAM_BASELINE),
        await measure("stream seal 1 MiB segment", stream, segments, 1, STREAM_BASELINE),
    ]
