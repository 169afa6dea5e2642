"""The provider configuration (C1) over gRPC with a real authz, a real keyvault and real NATS:
only the platform root reads or writes it, secrets are sealed at rest and never returned, stale
versions and bad input are refused, every update is audited, and running replicas use a change
without a restart."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.identity.domain.auth_config import AuthConfig, StoredAuthConfig
from helios.identity.events.auth_config_listener import AuthConfigListener
from helios.identity.keyvault_sealer import KeyvaultRowSealer
from helios.identity.service.auth_config import (
    SEALED_COLUMN,
    SEALED_TABLE,
    LiveAuthConfig,
    secret_row,
)
from helios.identity.store import tables
from helios.identity.store.postgres import postgres_unit_of_work
from helios.identity.wiring import AUTH_CONFIG_KEY_NAME
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.bus import Bus
from helios.kernel.clients import call_metadata
from helios.kernel.db import create_engine
from helios.kernel.errors import InvalidArgumentError, UnavailableError
from helios.kernel.outbox import OutboxRelay
from helios.kernel.principal import AssertionSigner, load_private_key
from helios.kernel.testing.audit_events import AuditEvents
from helios.kernel.testing.servers import free_port
from helios.kernel.testing.turns import TurnTakingSession
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2

SECRET = "okta-client-secret-7f3a9c"
OTHER_SECRET = "entra-client-secret-41d2e8"
LINK_MAIL = "Your Helios sign-in link"
EDGE = call_metadata(client_ip="203.0.113.9", user_agent="itest-browser/1.0")
TableRows = Callable[[Any], Awaitable[list[Any]]]


def _okta(secret: str = SECRET, **fields: Any) -> identity_pb2.OidcProviderConfig:
    values: dict[str, Any] = {
        "provider_id": "okta",
        "issuer": "https://login.example.com/oauth2/default",
        "client_id": "helios-web",
        "client_secret": secret,
        "enabled": True,
    }
    return identity_pb2.OidcProviderConfig(**(values | fields))


@dataclass
class Platform:
    """A platform org whose root is seeded in authz, and identity servers wired to it."""

    org_id: str
    root_id: str
    signer: AssertionSigner
    sealer: KeyvaultRowSealer
    authz: Any
    start_identity: Any

    def as_user(self, actor_id: str, org_id: str) -> Any:
        """Call metadata of a signed-in user of `org_id` (as the gateway passes it)."""
        principal = principal_pb2.Principal(
            actor_type=principal_pb2.ACTOR_TYPE_USER,
            actor_id=actor_id,
            org_id=org_id,
            session_id=str(uuid.uuid4()),
        )
        return call_metadata(assertion=self.signer.sign(principal))

    @property
    def root(self) -> Any:
        """The root signed in: its account belongs to no org, so its session has none."""
        return self.as_user(self.root_id, "")

    async def server(self, **options: Any) -> Any:
        """An identity server asking the real authz and sealing with the real keyvault."""
        return await self.start_identity(
            authorizer=self.authz.authorizer,
            auth_config_sealer=self.sealer,
            platform_org_id=self.org_id,
            **options,
        )


@pytest.fixture
async def platform(
    authz: Any, keyvault_stub: Any, start_identity: Any, principal_keys: tuple[Path, Path]
) -> Platform:
    """A fresh platform org (authz's HELIOS_PLATFORM_ORG_ID) with its root (`seed-root`)."""
    org_id, root_id = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.make_root(root_id, org_id)
    return Platform(
        org_id=org_id,
        root_id=root_id,
        signer=AssertionSigner(load_private_key(principal_keys[0])),
        sealer=KeyvaultRowSealer(keyvault_stub, org_id, AUTH_CONFIG_KEY_NAME),
        authz=authz,
        start_identity=start_identity,
    )


async def _get(stub: Any, metadata: Any) -> identity_pb2.AuthConfig:
    reply = await stub.GetAuthConfig(
        identity_pb2.GetAuthConfigRequest(), metadata=metadata, timeout=10
    )
    config: identity_pb2.AuthConfig = reply.config
    return config


async def _update(stub: Any, metadata: Any, **fields: Any) -> identity_pb2.AuthConfig:
    reply = await stub.UpdateAuthConfig(
        identity_pb2.UpdateAuthConfigRequest(config=identity_pb2.AuthConfig(**fields)),
        metadata=metadata,
        timeout=10,
    )
    config: identity_pb2.AuthConfig = reply.config
    return config


async def _refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def _stored_row(table_rows: TableRows) -> Any:
    (row,) = await table_rows(tables.platform_settings)
    return row


def _sealed(row: Any, provider_id: str) -> bytes:
    (provider,) = [p for p in row.auth_config["oidc_providers"] if p["provider_id"] == provider_id]
    return base64.b64decode(provider["client_secret_sealed"])


async def test_c1_root_updates_secret_sealed_at_rest_and_never_returned(
    platform: Platform, table_rows: TableRows
) -> None:
    """C1: the platform root replaces the configuration; the answer and GetAuthConfig carry no
    secret; the stored row holds no plaintext, only a keyvault row secret that opens to the
    secret for its provider and for no other."""
    stub = (await platform.server()).stub()
    assert await _get(stub, platform.root) == identity_pb2.AuthConfig(
        remember_device_days=30, version=0
    )

    updated = await _update(
        stub,
        platform.root,
        magic_link_enabled=True,
        remember_device_days=14,
        session_idle_timeout_seconds=3600,
        oidc_providers=[_okta()],
        version=0,
    )

    expected = identity_pb2.AuthConfig(
        magic_link_enabled=True,
        remember_device_days=14,
        session_idle_timeout_seconds=3600,
        oidc_providers=[_okta(secret="")],
        version=1,
    )
    assert updated == expected
    assert await _get(stub, platform.root) == expected
    row = await _stored_row(table_rows)
    assert (row.version, row.updated_by) == (1, platform.root_id)
    assert SECRET not in json.dumps(row.auth_config)
    sealed = _sealed(row, "okta")
    assert SECRET.encode() not in sealed
    opened = await platform.sealer.unseal(SEALED_TABLE, SEALED_COLUMN, secret_row("okta"), sealed)
    assert opened == SECRET.encode()
    with pytest.raises(InvalidArgumentError):
        await platform.sealer.unseal(SEALED_TABLE, SEALED_COLUMN, secret_row("entra"), sealed)


async def test_c1_only_the_platform_root_reads_or_writes(
    platform: Platform, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """C1: an org's Owner and a member of the platform org without the root role are refused
    (PERMISSION_DENIED) for both RPCs; nothing is written or audited."""
    stub = (await platform.server()).stub()
    org_id, owner_id = str(uuid.uuid4()), str(uuid.uuid4())
    await platform.authz.seed_org(org_id, owner_id)
    audit = AuditEvents(db_connection, "identity")
    await audit.mark()

    for metadata in (
        platform.as_user(owner_id, org_id),
        platform.as_user(str(uuid.uuid4()), platform.org_id),
    ):
        denied = await _refused(
            _update(stub, metadata, mfa_required=True, oidc_providers=[_okta()])
        )
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "platform root" in (denied.details() or "")
        denied = await _refused(_get(stub, metadata))
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED

    anonymous = await _refused(_get(stub, EDGE))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await table_rows(tables.platform_settings) == []
    await audit.expect_none("refused updates")


async def test_c1_stale_version_refused(platform: Platform) -> None:
    """C1: an update made from an old read (version behind the stored one) is refused with
    FAILED_PRECONDITION and a message saying to read again; the stored config stays."""
    stub = (await platform.server()).stub()
    await _update(stub, platform.root, mfa_required=True, version=0)

    stale = await _refused(_update(stub, platform.root, magic_link_enabled=True, version=0))

    assert stale.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stale.details() == (
        "the sign-in configuration changed since version 0 (it is at version 1): read it again"
        " and reapply your change"
    )
    ahead = await _refused(_update(stub, platform.root, version=7))
    assert ahead.code() == grpc.StatusCode.FAILED_PRECONDITION
    current = await _get(stub, platform.root)
    assert (current.version, current.mfa_required, current.magic_link_enabled) == (1, True, False)


async def test_c1_empty_secret_keeps_the_stored_one_new_provider_needs_one(
    platform: Platform, table_rows: TableRows
) -> None:
    """C1: re-sending a provider with an empty client_secret keeps its sealed secret as it was;
    a new provider without a secret is refused, naming the field."""
    stub = (await platform.server()).stub()
    await _update(stub, platform.root, oidc_providers=[_okta()], version=0)
    before = _sealed(await _stored_row(table_rows), "okta")

    renamed = await _update(
        stub, platform.root, oidc_providers=[_okta("", client_id="helios-web-2")], version=1
    )

    assert renamed.oidc_providers[0].client_id == "helios-web-2"
    assert _sealed(await _stored_row(table_rows), "okta") == before
    entra = identity_pb2.OidcProviderConfig(
        provider_id="entra", issuer="https://login.microsoftonline.com/t/v2.0", client_id="app"
    )
    missing = await _refused(
        _update(stub, platform.root, oidc_providers=[_okta(""), entra], version=2)
    )
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert missing.details() == (
        "oidc_providers[1] ('entra') is new: its client_secret is required"
    )
    assert (await _get(stub, platform.root)).version == 2


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"remember_device_days": 366}, "remember_device_days must be 1..365"),
        ({"remember_device_days": -3}, "remember_device_days must be 1..365"),
        ({"session_idle_timeout_seconds": 30}, "session_idle_timeout_seconds must be 0"),
        (
            {"session_idle_timeout_seconds": 30 * 24 * 3600 + 1},
            "session_idle_timeout_seconds must be 0",
        ),
        (
            {"oidc_providers": [_okta(issuer="http://login.example.com")]},
            "oidc_providers[0].issuer must be an https:// URL",
        ),
        ({"oidc_providers": [_okta(), _okta(OTHER_SECRET)]}, "is used twice"),
        (
            {"oidc_providers": [_okta(provider_id=f"p{i}") for i in range(21)]},
            "at most 20 OIDC providers",
        ),
        ({"oidc_providers": [_okta(client_id="")]}, "oidc_providers[0].client_id is required"),
    ],
)
async def test_c1_invalid_input_refused_clearly(
    platform: Platform, fields: dict[str, Any], says: str
) -> None:
    """C1: every field is validated; a refusal is INVALID_ARGUMENT naming the field and its
    bounds, and nothing changes."""
    stub = (await platform.server()).stub()

    refused = await _refused(_update(stub, platform.root, **fields))

    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (refused.details() or "")
    assert SECRET not in (refused.details() or "")
    assert (await _get(stub, platform.root)).version == 0


async def test_c1_every_update_audited_without_secrets(
    platform: Platform, db_connection: AsyncConnection
) -> None:
    """C1: each update enqueues one identity.authConfig.update event in the platform org, by the
    root, with a from/to diff and the providers whose secret was set, never a secret."""
    stub = (await platform.server()).stub()
    audit = AuditEvents(db_connection, "identity")
    await audit.mark()

    await _update(stub, platform.root, magic_link_enabled=True, oidc_providers=[_okta()], version=0)
    first = await audit.expect_one(
        "identity.authConfig.update",
        org_id=platform.org_id,
        actor_id=platform.root_id,
        resource_type="identity.authConfig",
        diff={
            "version": {"from": 0.0, "to": 1.0},
            "magic_link_enabled": {"from": False, "to": True},
        },
    )
    await _update(stub, platform.root, mfa_required=True, oidc_providers=[_okta("")], version=1)
    second = await audit.expect_one(
        "identity.authConfig.update",
        diff={"mfa_required": {"from": False, "to": True}},
    )

    assert json_format.MessageToDict(first.diff)["oidc_providers"] == {
        "added": [
            {
                "provider_id": "okta",
                "issuer": _okta().issuer,
                "client_id": "helios-web",
                "enabled": True,
            }
        ],
        "client_secret_set": ["okta"],
    }
    assert "oidc_providers" not in json_format.MessageToDict(second.diff)
    for event in (first, second):
        assert SECRET.encode() not in event.SerializeToString()


async def test_c1_concurrent_saves_of_one_version_one_wins(identity_schema: str) -> None:
    """C1: two transactions that both read version 0 and save version 1 (committed, on their own
    connections): the first wins, the second writes nothing and learns it lost."""
    engine = create_engine(identity_schema)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    uow = postgres_unit_of_work(sessions, AuditRecorder("identity", tables.outbox), _now)

    first_block, second_block = uow(), uow()
    try:
        first = await first_block.__aenter__()
        second = await second_block.__aenter__()
        assert (await first.auth_config()).config.version == 0
        assert (await second.auth_config()).config.version == 0
        won = await first.save_auth_config(
            StoredAuthConfig(AuthConfig(mfa_required=True, version=1)), 0, "first", _now()
        )
        losing = asyncio.create_task(  # waits for the first transaction's row
            second.save_auth_config(
                StoredAuthConfig(AuthConfig(magic_link_enabled=True, version=1)), 0, "2nd", _now()
            )
        )
        await first_block.__aexit__(None, None, None)  # commit
        lost = await losing
        await second_block.__aexit__(None, None, None)
        assert (won, lost) == (True, False)
        async with uow() as tx:
            kept = (await tx.auth_config()).config
        assert (kept.version, kept.mfa_required, kept.magic_link_enabled) == (1, True, False)
    finally:
        async with sessions() as session, session.begin():
            await session.execute(delete(tables.platform_settings))
        await engine.dispose()


# --- a running replica uses a change without a restart ---------------------------------------


def _turn_taking(db_connection: AsyncConnection, turns: asyncio.Lock) -> Any:
    """Sessions on the test's connection taken in turns: the listeners reload while the relay
    and the test use it."""
    sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
        bind=db_connection,
        class_=TurnTakingSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        turns=turns,
    )
    return sessions


@contextlib.asynccontextmanager
async def _replica(sessions: Any, nats_url: str, refresh: float) -> AsyncIterator[Any]:
    """One replica's live configuration and its listener, running until the block ends."""
    source = LiveAuthConfig(
        postgres_unit_of_work(sessions, AuditRecorder("identity", tables.outbox), _now)
    )
    bus = Bus(nats_url, f"itest-{uuid.uuid4().hex[:6]}")
    listener = AuthConfigListener(bus, source, refresh_seconds=refresh)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        yield source, listener
    finally:
        stop.set()
        task.cancel()  # as the server's stop does: a first connect to NATS may still be pending
        await asyncio.gather(task, return_exceptions=True)
        await bus.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _until(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Wait until `check()` holds (it becomes true on an event, not after a set time)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def _version_is(source: LiveAuthConfig, version: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return source.current().version == version
        except UnavailableError:
            return False  # not loaded yet

    return check


async def _request_link(stub: Any, email: str) -> None:
    await stub.RequestMagicLink(
        identity_pb2.RequestMagicLinkRequest(email=email), metadata=EDGE, timeout=10
    )


async def _subjects(table_rows: TableRows, to: str) -> list[str]:
    return [row.subject for row in await table_rows(tables.mail_outbox) if row.to_address == to]


async def test_c1_change_announced_on_nats_reaches_running_replicas(
    platform: Platform, db_connection: AsyncConnection, nats_url: str, table_rows: TableRows
) -> None:
    """C1: two running replicas' configurations follow an update as soon as its audit event is
    relayed to NATS (no periodic refresh in this test); on the replica that did not take the
    update, magic links, off before, are mailed right after, without a restart."""
    turns = asyncio.Lock()  # held by the test while its RPCs use the connection
    sessions = _turn_taking(db_connection, turns)
    relay_bus = Bus(nats_url, "itest-relay")
    relay = OutboxRelay(sessions, tables.outbox, relay_bus)
    async with (
        _replica(sessions, nats_url, refresh=3600) as (source_a, listener_a),
        _replica(sessions, nats_url, refresh=3600) as (source_b, listener_b),
    ):
        await asyncio.wait_for(listener_a.subscribed.wait(), 10)
        await asyncio.wait_for(listener_b.subscribed.wait(), 10)
        writer = (await platform.server()).stub()
        replica_b = (await platform.server(config=source_b)).stub()
        email = f"ada.{uuid.uuid4().hex[:10]}@example.com"
        async with turns:
            await replica_b.SignUp(
                identity_pb2.SignUpRequest(email=email, password="correct horse battery staple"),
                metadata=EDGE,
                timeout=10,
            )
            await _request_link(replica_b, email)
            assert LINK_MAIL not in await _subjects(table_rows, email)
            assert source_b.current().magic_link_enabled is False

            await _update(writer, platform.root, magic_link_enabled=True, version=0)
            assert source_a.current().version == 0  # nothing announced yet
        assert await relay.publish_pending() >= 1

        await _until(_version_is(source_a, 1), "replica A to load version 1")
        await _until(_version_is(source_b, 1), "replica B to load version 1")
        assert source_b.current().magic_link_enabled is True
        async with turns:
            await _request_link(replica_b, email)
            assert LINK_MAIL in await _subjects(table_rows, email)
    await relay_bus.close()


async def test_c1_periodic_reload_when_announcements_are_missed(
    platform: Platform, db_connection: AsyncConnection
) -> None:
    """C1: with NATS unreachable (every announcement missed), a replica still picks the change
    up by its periodic re-read."""
    turns = asyncio.Lock()
    sessions = _turn_taking(db_connection, turns)
    unreachable = f"nats://127.0.0.1:{free_port()}"
    async with _replica(sessions, unreachable, refresh=0.05) as (source, listener):
        await _until(_version_is(source, 0), "the first load")
        writer = (await platform.server()).stub()

        async with turns:  # the reloads wait while the update uses the test's connection
            await _update(writer, platform.root, remember_device_days=7, version=0)

        await _until(_version_is(source, 1), "the periodic reload")
        assert source.current().remember_device_days == 7
        assert not listener.subscribed.is_set()


async def test_c1_live_config_fails_closed_until_loaded(db_session: Any) -> None:
    """C1: before its first load a replica's configuration refuses (UNAVAILABLE) instead of
    running sign-ins under defaults it has not read."""
    source = LiveAuthConfig(
        postgres_unit_of_work(db_session, AuditRecorder("identity", tables.outbox), _now)
    )
    with pytest.raises(UnavailableError):
        source.current()
    assert (await source.reload()).version == 0
    assert source.current().remember_device_days == 30
