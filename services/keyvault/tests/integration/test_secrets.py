"""Platform secrets over gRPC against real PostgreSQL (E7): versioned values sealed by the root
seal, check-and-set, root only (listed Helios services, never a user principal), metadata-only
listing, and no value in the table, the audit trail or any log line."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
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
from helios.kernel.status import DETAILS_KEY
from helios.kernel.tls import CertFiles
from helios.keyvault.rpc.secrets import SecretsRpc
from helios.keyvault.seal import LocalSeal, SealError
from helios.keyvault.secrets_store import (
    DEFAULT_SECRETS_CALLERS,
    MAX_SECRET_BYTES,
    SecretStore,
    secret_context,
)
from helios.keyvault.store import tables
from helios.keyvault.store.secrets_postgres import postgres_secret_unit_of_work
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.keyvault.v1 import keyvault_pb2 as kv
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

SERVICE = "helios.proto.keyvault.v1.KeyvaultService"
SMTP = b"smtp-password: correct horse battery staple 7f3a"
SMTP_V2 = b"smtp-password: rotated tuna unicorn 91c4"
TOKEN = b"upstream-api-token: sk-live-5b1e0c9d"


class _SecretsServicer(SecretsRpc):
    """The secrets RPCs alone (the rest of KeyvaultService answers UNIMPLEMENTED)."""

    def __init__(self, secrets: SecretStore) -> None:
        self._secrets = secrets


@dataclass
class SecretsServer:
    """A running server with the secrets RPCs; stubs for services and for users."""

    port: int
    pki: dict[str, CertFiles]
    signer: AssertionSigner
    server: GrpcService
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def as_service(self, caller: str) -> keyvault_pb2_grpc.KeyvaultServiceStub:
        channel = secure_channel(f"localhost:{self.port}", self.pki[caller])
        self.channels.append(channel)
        return keyvault_pb2_grpc.KeyvaultServiceStub(channel)

    def as_user(
        self, org_id: str, caller: str = "gateway"
    ) -> tuple[keyvault_pb2_grpc.KeyvaultServiceStub, Any]:
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=str(uuid.uuid4()),
            org_id=org_id,
            session_id=str(uuid.uuid4()),
        )
        return self.as_service(caller), call_metadata(assertion=self.signer.sign(principal))


@pytest.fixture
async def start_secrets(
    keyvault_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    seal_dir: Path,
) -> AsyncIterator[Callable[..., Awaitable[SecretsServer]]]:
    """Start servers wired like wiring.py (secrets store over the test's rolled-back sessions and
    the test's root key file), optionally with another `secrets_callers` list."""
    started: list[SecretsServer] = []

    async def start(callers: Iterable[str] = DEFAULT_SECRETS_CALLERS) -> SecretsServer:
        store = SecretStore(
            postgres_secret_unit_of_work(
                db_session, AuditRecorder("keyvault", tables.outbox), _now
            ),
            LocalSeal.from_key_file(seal_dir / "root.key"),
            _now,
            callers=callers,
        )
        servicer = _SecretsServicer(store)
        server = GrpcService(
            "keyvault", pki["keyvault"], AssertionVerifier([load_public_key(principal_keys[1])])
        )
        server.add_service(
            SERVICE, lambda s: keyvault_pb2_grpc.add_KeyvaultServiceServicer_to_server(servicer, s)
        )
        port = await server.start("127.0.0.1", 0)
        running = SecretsServer(
            port=port,
            pki=pki,
            signer=AssertionSigner(load_private_key(principal_keys[0])),
            server=server,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        for channel in running.channels:
            await channel.close()
        await running.server.stop(0)


@pytest.fixture
async def secrets_server(
    start_secrets: Callable[..., Awaitable[SecretsServer]],
) -> SecretsServer:
    """One server with the default `secrets_callers`."""
    return await start_secrets()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _refused(call: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return refused.value


def _field_of(error: grpc.aio.AioRpcError) -> str:
    """The field named by the BadRequest detail of a refusal."""
    for key, value in error.trailing_metadata() or ():
        if key == DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return bad.field_violations[0].field
    return ""


async def _put(
    stub: Any, name: str, value: bytes, expected: int | None = None, **kwargs: Any
) -> kv.PutSecretResponse:
    request = kv.PutSecretRequest(name=name, value=value)
    if expected is not None:
        request.expected_version = expected
    reply: kv.PutSecretResponse = await stub.PutSecret(request, **kwargs)
    return reply


async def test_e7_put_then_get_latest_and_each_version(secrets_server: SecretsServer) -> None:
    """E7: each PutSecret appends a version; GetSecret with version 0 returns the latest, with a
    number that version; a missing name or version is NOT_FOUND."""
    stub = secrets_server.as_service("identity")
    first = await _put(stub, "smtp/password", SMTP, expected=0)
    assert (first.name, first.version) == ("smtp/password", 1)
    assert first.create_time.seconds > 0
    second = await _put(stub, "smtp/password", SMTP_V2, expected=1)
    assert second.version == 2
    third = await _put(stub, "smtp/password", TOKEN)  # no check-and-set
    assert third.version == 3

    latest = await stub.GetSecret(kv.GetSecretRequest(name="smtp/password"))
    assert (latest.name, latest.version, latest.value) == ("smtp/password", 3, TOKEN)
    assert latest.create_time == third.create_time
    one = await stub.GetSecret(kv.GetSecretRequest(name="smtp/password", version=1))
    assert (one.version, one.value) == (1, SMTP)
    two = await stub.GetSecret(kv.GetSecretRequest(name="smtp/password", version=2))
    assert (two.version, two.value) == (2, SMTP_V2)

    await _refused(
        stub.GetSecret(kv.GetSecretRequest(name="smtp/password", version=4)),
        grpc.StatusCode.NOT_FOUND,
    )
    await _refused(
        stub.GetSecret(kv.GetSecretRequest(name="smtp/nothing")), grpc.StatusCode.NOT_FOUND
    )
    negative = await _refused(
        stub.GetSecret(kv.GetSecretRequest(name="smtp/password", version=-1)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert _field_of(negative) == "version"
    # Another listed service reads the same platform secret.
    other = secrets_server.as_service("gateway")
    assert (await other.GetSecret(kv.GetSecretRequest(name="smtp/password"))).value == TOKEN


async def test_e7_check_and_set_mismatch_is_refused_and_changes_nothing(
    secrets_server: SecretsServer,
) -> None:
    """E7: PutSecret with an expected_version other than the current one is FAILED_PRECONDITION
    (0 on an existing secret, a stale or future number, 1 on a missing secret) and writes
    nothing."""
    stub = secrets_server.as_service("identity")
    await _put(stub, "db/password", SMTP, expected=0)
    for stale in (0, 2, 7):
        error = await _refused(
            _put(stub, "db/password", TOKEN, expected=stale), grpc.StatusCode.FAILED_PRECONDITION
        )
        assert "current version is 1" in (error.details() or "")
        assert TOKEN.decode() not in (error.details() or "")
    latest = await stub.GetSecret(kv.GetSecretRequest(name="db/password"))
    assert (latest.version, latest.value) == (1, SMTP)

    await _refused(_put(stub, "db/other", TOKEN, expected=1), grpc.StatusCode.FAILED_PRECONDITION)
    await _refused(stub.GetSecret(kv.GetSecretRequest(name="db/other")), grpc.StatusCode.NOT_FOUND)
    negative = await _refused(
        _put(stub, "db/other", TOKEN, expected=-1), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert _field_of(negative) == "expected_version"
    assert (await _put(stub, "db/password", TOKEN, expected=1)).version == 2


async def test_e7_a_user_principal_is_refused_even_through_a_listed_service(
    secrets_server: SecretsServer,
) -> None:
    """E7 root only: any call carrying a user principal is PERMISSION_DENIED for Put, Get and
    List, although the gateway it comes through is a listed caller."""
    service = secrets_server.as_service("identity")
    await _put(service, "smtp/password", SMTP)
    for caller in ("gateway", "identity"):
        stub, meta = secrets_server.as_user(str(uuid.uuid4()), caller)
        await _refused(
            _put(stub, "smtp/password", TOKEN, metadata=meta), grpc.StatusCode.PERMISSION_DENIED
        )
        error = await _refused(
            stub.GetSecret(kv.GetSecretRequest(name="smtp/password"), metadata=meta),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert SMTP.decode() not in (error.details() or "")
        await _refused(
            stub.ListSecrets(kv.ListSecretsRequest(), metadata=meta),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    latest = await service.GetSecret(kv.GetSecretRequest(name="smtp/password"))
    assert (latest.version, latest.value) == (1, SMTP)


async def test_e7_a_service_not_in_secrets_callers_is_refused(
    secrets_server: SecretsServer, start_secrets: Callable[..., Awaitable[SecretsServer]]
) -> None:
    """E7 root only: a Helios identity that is not in `secrets_callers` (devstack, keyvault, the
    test client) is PERMISSION_DENIED; with a shorter `secrets_callers` list, a service dropped
    from it is refused too."""
    await _put(secrets_server.as_service("audit"), "audit/signing-seed", SMTP)
    for caller in ("devstack", "keyvault", "client"):
        stub = secrets_server.as_service(caller)
        await _refused(_put(stub, "audit/x", TOKEN), grpc.StatusCode.PERMISSION_DENIED)
        await _refused(
            stub.GetSecret(kv.GetSecretRequest(name="audit/signing-seed")),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        await _refused(stub.ListSecrets(kv.ListSecretsRequest()), grpc.StatusCode.PERMISSION_DENIED)

    narrow = await start_secrets(callers=["identity"])
    await _refused(
        narrow.as_service("gateway").GetSecret(kv.GetSecretRequest(name="audit/signing-seed")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    reply = await narrow.as_service("identity").GetSecret(
        kv.GetSecretRequest(name="audit/signing-seed")
    )
    assert reply.value == SMTP


async def test_e7_bad_names_are_refused(secrets_server: SecretsServer) -> None:
    """E7: names must match ^[a-z0-9][a-z0-9._/-]{0,199}$ without '..'; anything else is
    INVALID_ARGUMENT naming the field, for Put and Get; a 200-character name is fine."""
    stub = secrets_server.as_service("identity")
    bad = [
        "",
        "Smtp/password",
        "-leading",
        "/absolute",
        ".hidden",
        "a..b",
        "smtp/../identity/key",
        "with space",
        "tab\tname",
        "trailing-newline\n",
        "ümlaut",
        "semi;colon",
        "a" * 201,
    ]
    for name in bad:
        error = await _refused(_put(stub, name, SMTP), grpc.StatusCode.INVALID_ARGUMENT)
        assert _field_of(error) == "name", name
        await _refused(
            stub.GetSecret(kv.GetSecretRequest(name=name)), grpc.StatusCode.INVALID_ARGUMENT
        )
    longest = "a" * 200
    assert (await _put(stub, longest, SMTP)).version == 1
    for good in ("smtp/password", "0", "a.b_c-d/e.f"):
        assert (await _put(stub, good, SMTP)).version == 1
    listed = await stub.ListSecrets(kv.ListSecretsRequest())
    assert {s.name for s in listed.secrets} == {longest, "smtp/password", "0", "a.b_c-d/e.f"}


async def test_e7_values_over_64_kib_or_empty_are_refused(secrets_server: SecretsServer) -> None:
    """E7: a value of exactly 64 KiB is stored; one byte more, or an empty value, is
    INVALID_ARGUMENT and nothing is written."""
    stub = secrets_server.as_service("identity")
    exact = bytes(range(256)) * (MAX_SECRET_BYTES // 256)
    assert len(exact) == 64 * 1024
    assert (await _put(stub, "blob/exact", exact)).version == 1
    assert (await stub.GetSecret(kv.GetSecretRequest(name="blob/exact"))).value == exact
    over = await _refused(_put(stub, "blob/over", exact + b"!"), grpc.StatusCode.INVALID_ARGUMENT)
    assert _field_of(over) == "value"
    empty = await _refused(_put(stub, "blob/empty", b""), grpc.StatusCode.INVALID_ARGUMENT)
    assert _field_of(empty) == "value"
    over_existing = await _refused(
        _put(stub, "blob/exact", exact + b"!"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert _field_of(over_existing) == "value"
    for name in ("blob/over", "blob/empty"):
        await _refused(stub.GetSecret(kv.GetSecretRequest(name=name)), grpc.StatusCode.NOT_FOUND)
    assert (await stub.GetSecret(kv.GetSecretRequest(name="blob/exact"))).version == 1


async def test_e7_list_shows_metadata_only_by_prefix_and_page(
    secrets_server: SecretsServer,
) -> None:
    """E7: ListSecrets returns name, current version, creation of version 1 and of the latest,
    ordered by name, paged with an opaque token, filtered by a literal prefix (`_` is no
    wildcard), and never a value."""
    stub = secrets_server.as_service("identity")
    await _put(stub, "smtp/password", SMTP)
    await _put(stub, "smtp/password", SMTP_V2)
    await _put(stub, "smtp/user", TOKEN)
    await _put(stub, "smtp/relay", TOKEN)
    await _put(stub, "smtpx", TOKEN)
    await _put(stub, "s_tp/key", TOKEN)
    await _put(stub, "oauth/google", TOKEN)

    pages: list[kv.ListSecretsResponse] = []
    token = ""
    while True:
        page = await stub.ListSecrets(
            kv.ListSecretsRequest(prefix="smtp/", page_size=2, page_token=token)
        )
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    assert [[s.name for s in p.secrets] for p in pages] == [
        ["smtp/password", "smtp/relay"],
        ["smtp/user"],
    ]
    password = pages[0].secrets[0]
    assert password.current_version == 2
    assert password.create_time.ToDatetime() <= password.update_time.ToDatetime()
    assert password.create_time != password.update_time
    assert pages[1].secrets[0].current_version == 1
    assert pages[1].secrets[0].create_time == pages[1].secrets[0].update_time
    for page in pages:
        wire = page.SerializeToString()
        for value in (SMTP, SMTP_V2, TOKEN):
            assert value not in wire

    everything = await stub.ListSecrets(kv.ListSecretsRequest())
    assert [s.name for s in everything.secrets] == [
        "oauth/google",
        "s_tp/key",
        "smtp/password",
        "smtp/relay",
        "smtp/user",
        "smtpx",
    ]
    assert everything.next_page_token == ""
    literal = await stub.ListSecrets(kv.ListSecretsRequest(prefix="s_"))
    assert [s.name for s in literal.secrets] == ["s_tp/key"]

    bad_token = await _refused(
        stub.ListSecrets(kv.ListSecretsRequest(page_token="not a token!")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert _field_of(bad_token) == "page_token"
    bad_prefix = await _refused(
        stub.ListSecrets(kv.ListSecretsRequest(prefix="SMTP%")), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert _field_of(bad_prefix) == "prefix"
    await _refused(
        stub.ListSecrets(kv.ListSecretsRequest(page_size=-1)), grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_e7_the_stored_row_holds_only_the_value_sealed_by_the_root_key(
    secrets_server: SecretsServer, db_connection: AsyncConnection, seal_dir: Path
) -> None:
    """E7: keyvault.secrets holds no plaintext; each row opens with the root key only under
    its own name and version (a row copied to another version or name does not open)."""
    stub = secrets_server.as_service("identity")
    await _put(stub, "smtp/password", SMTP)
    await _put(stub, "smtp/password", SMTP_V2)
    rows = (
        await db_connection.execute(
            text(
                "SELECT name, version, sealed_value FROM keyvault.secrets "
                "WHERE name = 'smtp/password' ORDER BY version"
            )
        )
    ).all()
    assert [r.version for r in rows] == [1, 2]
    root = LocalSeal.from_key_file(seal_dir / "root.key")
    for row, value in zip(rows, (SMTP, SMTP_V2), strict=True):
        sealed = bytes(row.sealed_value)
        assert value not in sealed
        assert value.hex().encode() not in sealed
        assert len(sealed) == 12 + len(value) + 16
        assert root.unwrap(sealed, secret_context(row.name, row.version)) == value
        with pytest.raises(SealError):
            root.unwrap(sealed, secret_context(row.name, 3 - row.version))
        with pytest.raises(SealError):
            root.unwrap(sealed, secret_context("smtp/user", row.version))
    everything = (await db_connection.execute(text("SELECT * FROM keyvault.secrets"))).all()
    dumped = repr(everything).encode()
    assert SMTP not in dumped
    assert SMTP_V2 not in dumped


async def test_e7_every_put_is_audited_without_the_value(
    secrets_server: SecretsServer, db_connection: AsyncConnection
) -> None:
    """E7: each successful PutSecret enqueues one keyvault.secret.put audit event (name, version,
    calling service); no payload holds the value, and refused writes are not audited."""
    stub = secrets_server.as_service("identity")
    await _put(stub, "smtp/password", SMTP)
    await _put(stub, "smtp/password", SMTP_V2, expected=1)
    await _refused(
        _put(stub, "smtp/password", TOKEN, expected=1), grpc.StatusCode.FAILED_PRECONDITION
    )
    await _refused(
        _put(secrets_server.as_service("devstack"), "smtp/password", TOKEN),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    payloads = [
        bytes(p)
        for p in (
            await db_connection.execute(text("SELECT payload FROM keyvault.outbox"))
        ).scalars()
    ]
    events = [events_pb2.AuditEvent.FromString(p) for p in payloads]
    puts = [e for e in events if e.action == "keyvault.secret.put"]
    assert len(puts) == 2
    assert [dict(e.diff) for e in puts] == [
        {"name": "smtp/password", "version": 1.0, "caller": "identity"},
        {"name": "smtp/password", "version": 2.0, "caller": "identity"},
    ]
    assert all(e.resource_type == "keyvault.secret" for e in puts)
    assert all(e.resource_id == "smtp/password" for e in puts)
    assert all(e.producer == "keyvault" for e in puts)
    assert all(e.actor_type == principal_pb2.ACTOR_TYPE_SYSTEM for e in puts)
    for payload in payloads:
        for value in (SMTP, SMTP_V2, TOKEN):
            assert value not in payload
            assert value.hex().encode() not in payload


async def test_e7_no_secret_value_reaches_any_log_line(
    secrets_server: SecretsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """E7: a run of writes, reads, listings and every kind of refusal, captured at DEBUG, logs
    none of the values (raw, hex or in a record's fields)."""
    caplog.set_level(logging.DEBUG)
    stub = secrets_server.as_service("identity")
    await _put(stub, "smtp/password", SMTP, expected=0)
    await _put(stub, "smtp/password", SMTP_V2)
    await stub.GetSecret(kv.GetSecretRequest(name="smtp/password", version=1))
    await stub.GetSecret(kv.GetSecretRequest(name="smtp/password"))
    await stub.ListSecrets(kv.ListSecretsRequest(prefix="smtp/"))
    await _refused(
        _put(stub, "smtp/password", TOKEN, expected=0), grpc.StatusCode.FAILED_PRECONDITION
    )
    await _refused(_put(stub, "Bad..Name", TOKEN), grpc.StatusCode.INVALID_ARGUMENT)
    await _refused(
        _put(stub, "big", TOKEN * (MAX_SECRET_BYTES // len(TOKEN) + 1)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    user, meta = secrets_server.as_user(str(uuid.uuid4()))
    await _refused(
        _put(user, "smtp/password", TOKEN, metadata=meta), grpc.StatusCode.PERMISSION_DENIED
    )
    await _refused(
        _put(secrets_server.as_service("devstack"), "smtp/password", TOKEN),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert caplog.records, "the run logged nothing: the capture is not working"
    logged = "\n".join(
        record.getMessage() + repr(record.__dict__) + (caplog.text or "")
        for record in caplog.records
    )
    for value in (SMTP, SMTP_V2, TOKEN):
        assert value.decode() not in logged
        assert value.hex() not in logged
