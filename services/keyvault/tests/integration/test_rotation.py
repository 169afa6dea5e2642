"""Scheduled rotation and the per-version use limit (E6)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import duration_pb2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.kernel.context import CallContext
from helios.proto.audit.v1 import events_pb2
from helios.proto.keyvault.v1 import keyvault_pb2 as kv

ORG = str(uuid.uuid4())
CONTEXT = kv.AadContext(table="notes", row_id="1", column="body")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def test_e6_version_retired_before_its_use_limit(
    start_keyvault: Callable[..., Awaitable[Any]],
) -> None:
    """E6: with a use limit of 3, the third encryption rotates first and uses version 2; the
    first two still decrypt."""
    keyvault = await start_keyvault(max_uses=3)
    stub, meta = keyvault.as_user(ORG)
    key = (
        await stub.CreateKey(
            kv.CreateKeyRequest(name="busy", purpose=1, algorithm=1), metadata=meta
        )
    ).key
    versions = []
    blobs = []
    for i in range(3):
        reply = await stub.Encrypt(
            kv.EncryptRequest(key_id=key.key_id, plaintext=b"%d" % i, context=CONTEXT),
            metadata=meta,
        )
        versions.append(reply.key_version)
        blobs.append(reply.ciphertext)
    assert versions == [1, 1, 2]
    for i, blob in enumerate(blobs):
        opened = await stub.Decrypt(
            kv.DecryptRequest(ciphertext=blob, context=CONTEXT), metadata=meta
        )
        assert opened.plaintext == b"%d" % i


async def test_e6_scheduled_rotation_runs_when_due_and_is_audited(
    start_keyvault: Callable[..., Awaitable[Any]], db_connection: AsyncConnection
) -> None:
    """E6: encryption keys default to quarterly rotation; a key whose period has passed is
    rotated by the schedule (once), the next rotation moves forward, and the rotation is
    audited with reason "scheduled"."""
    clock = Clock()
    keyvault = await start_keyvault(clock=clock)
    stub, meta = keyvault.as_user(ORG)
    default = (
        await stub.CreateKey(
            kv.CreateKeyRequest(name="quarterly", purpose=1, algorithm=1), metadata=meta
        )
    ).key
    assert default.rotation_period.ToTimedelta() == dt.timedelta(days=90)
    daily = (
        await stub.CreateKey(
            kv.CreateKeyRequest(
                name="daily",
                purpose=1,
                algorithm=1,
                rotation_period=duration_pb2.Duration(seconds=86400),
            ),
            metadata=meta,
        )
    ).key
    system = CallContext(caller="keyvault")
    assert await keyvault.service.rotate_due(system) == 0
    clock.now += dt.timedelta(days=2)
    assert await keyvault.service.rotate_due(system) == 1
    assert await keyvault.service.rotate_due(system) == 0
    after = (await stub.GetKey(kv.GetKeyRequest(key_id=daily.key_id), metadata=meta)).key
    assert after.current_version == 2
    assert after.next_rotation_time.ToDatetime(dt.UTC) == clock.now + dt.timedelta(days=1)
    untouched = (await stub.GetKey(kv.GetKeyRequest(key_id=default.key_id), metadata=meta)).key
    assert untouched.current_version == 1
    payloads = (await db_connection.execute(text("SELECT payload FROM keyvault.outbox"))).scalars()
    reasons = [dict(events_pb2.AuditEvent.FromString(p).diff).get("reason") for p in payloads]
    assert reasons.count("scheduled") == 1
