"""Sign-in throttling against real PostgreSQL: per account (known or not) and per IP, lockout
refused without password work, expiry, reset on success, shared by replicas, unlock (A1)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.argon2_hasher import Argon2Hasher
from helios.identity.domain.throttle import ThrottlePolicy
from helios.identity.service.bundle import IdentityServices
from helios.identity.store import tables
from helios.identity.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import call_metadata
from helios.kernel.context import CallContext
from helios.kernel.errors import ResourceExhaustedError, UnauthenticatedError
from helios.kernel.principal import AssertionSigner, load_private_key
from helios.kernel.status import DETAILS_KEY
from helios.proto.audit.v1 import events_pb2
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
BAD_CREDENTIALS = "invalid e-mail or password"
START = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
POLICY = ThrottlePolicy(
    max_failures_per_account=3,
    max_failures_per_ip=5,
    window=dt.timedelta(minutes=15),
    lockout=dt.timedelta(minutes=15),
)

OutboxEvents = Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]
TableRows = Callable[[Any], Awaitable[list[Any]]]


class CountingHasher:
    """The real argon2 hasher, counting the password work it is asked to do."""

    def __init__(self) -> None:
        self._inner = Argon2Hasher(time_cost=1, memory_kib=8192, parallelism=1)
        self.verifies = 0
        self.burns = 0

    async def hash(self, password: str) -> str:
        return await self._inner.hash(password)

    async def verify(self, stored: str, password: str) -> bool:
        self.verifies += 1
        return await self._inner.verify(stored, password)

    def needs_rehash(self, stored: str) -> bool:
        return self._inner.needs_rehash(stored)

    async def burn(self, password: str) -> None:
        self.burns += 1
        await self._inner.burn(password)

    @property
    def work(self) -> int:
        return self.verifies + self.burns


class Clock:
    """A settable clock (the service's only time source)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def _email() -> str:
    return f"lin.{uuid.uuid4().hex[:10]}@example.com"


def _ip() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


async def _sign_up(stub: Any, email: str) -> str:
    response = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD, display_name="Lin"), timeout=10
    )
    user_id: str = response.user.user_id
    return user_id


async def _sign_in(stub: Any, email: str, password: str, ip: str) -> grpc.aio.AioRpcError | None:
    """None on success, else the refusal."""
    try:
        await stub.SignIn(
            identity_pb2.SignInRequest(email=email, password=password),
            metadata=call_metadata(client_ip=ip),
            timeout=10,
        )
    except grpc.aio.AioRpcError as refused:
        return refused
    return None


def _retry_delay(error: grpc.aio.AioRpcError) -> int:
    for key, value in error.trailing_metadata() or ():
        if key == DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                retry = error_details_pb2.RetryInfo()
                if detail.Unpack(retry):
                    return retry.retry_delay.seconds
    raise AssertionError("no RetryInfo detail")


async def _fail(stub: Any, email: str, times: int, ip: str) -> None:
    for _ in range(times):
        refused = await _sign_in(stub, email, "wrong password 123", ip)
        assert refused is not None
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
        assert refused.details() == BAD_CREDENTIALS


async def test_a1_account_locked_after_n_failures_without_password_work(
    start_identity: Any, outbox_events: OutboxEvents, table_rows: TableRows
) -> None:
    """A1: after N wrong passwords the (N+1)th attempt, even with the RIGHT password, is refused
    with RESOURCE_EXHAUSTED and a retry delay, and the hasher is not called; the lockout is
    audited once as `identity.user.signInLocked`; the tables hold no address in clear."""
    hasher = CountingHasher()
    clock = Clock()
    server = await start_identity(hasher=hasher, clock=clock, throttle=POLICY)
    stub = server.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    await _fail(stub, email, 3, _ip())

    before = hasher.work
    refused = await _sign_in(stub, email, PASSWORD, _ip())
    assert refused is not None
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.details() == "too many failed sign-in attempts; try again in 900 seconds"
    assert _retry_delay(refused) == 900
    assert hasher.work == before
    assert await table_rows(tables.sessions) == []

    events = [event for _, event in await outbox_events()]
    locked = [event for event in events if event.action == "identity.user.signInLocked"]
    assert len(locked) == 1
    assert locked[0].outcome == events_pb2.AUDIT_OUTCOME_FAILURE
    assert locked[0].resource_id == user_id
    assert locked[0].diff["scope"] == "account"
    refusals = [e for e in events if e.action == "identity.user.signIn" and "refused" in e.diff]
    assert len(refusals) == 1
    assert refusals[0].outcome == events_pb2.AUDIT_OUTCOME_FAILURE

    stored = [
        *await table_rows(tables.sign_in_lockouts),
        *await table_rows(tables.sign_in_failures),
    ]
    assert all(email.split("@")[0] not in str(value) for row in stored for value in row)


async def test_a1_unknown_email_locks_the_same_way(
    start_identity: Any, outbox_events: OutboxEvents
) -> None:
    """A1: an address with no account is counted and locked like a real one: same answers,
    same retry delay, no password work once locked (no account enumeration)."""
    hasher = CountingHasher()
    server = await start_identity(hasher=hasher, clock=Clock(), throttle=POLICY)
    stub = server.stub()
    known = _email()
    await _sign_up(stub, known)
    answers: dict[str, list[tuple[grpc.StatusCode, str, int | None]]] = {}
    for email in (known, _email()):
        seen = []
        for password in ["wrong password 123"] * 3 + [PASSWORD]:
            refused = await _sign_in(stub, email, password, _ip())
            assert refused is not None
            code = refused.code()
            delay = _retry_delay(refused) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
            seen.append((code, refused.details() or "", delay))
        answers[email] = seen
    assert answers[known] == list(answers.values())[1]
    assert answers[known][-1][0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert hasher.work == 6
    locked = [e for _, e in await outbox_events() if e.action == "identity.user.signInLocked"]
    assert len(locked) == 2
    assert sorted(bool(event.resource_id) for event in locked) == [False, True]


async def test_a1_ip_limit_across_different_emails(start_identity: Any) -> None:
    """A1: failures from one IP on different addresses add up; at the IP limit every address
    is refused from that IP, while another IP still gets through."""
    hasher = CountingHasher()
    server = await start_identity(hasher=hasher, clock=Clock(), throttle=POLICY)
    stub = server.stub()
    email = _email()
    await _sign_up(stub, email)
    ip = _ip()
    for _ in range(5):
        await _fail(stub, _email(), 1, ip)

    before = hasher.work
    refused = await _sign_in(stub, email, PASSWORD, ip)
    assert refused is not None
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert hasher.work == before
    assert await _sign_in(stub, email, PASSWORD, "203.0.113.200") is None


async def test_a1_lockout_expires(start_identity: Any) -> None:
    """A1: a lockout ends after HELIOS_SIGNIN_LOCKOUT_SECONDS; the retry delay counts down;
    the failures that caused it were consumed, so N more are allowed."""
    clock = Clock()
    server = await start_identity(clock=clock, throttle=POLICY)
    stub = server.stub()
    email = _email()
    await _sign_up(stub, email)
    await _fail(stub, email, 3, _ip())

    clock.now = START + dt.timedelta(minutes=10)
    refused = await _sign_in(stub, email, PASSWORD, _ip())
    assert refused is not None
    assert _retry_delay(refused) == 300

    clock.now = START + dt.timedelta(minutes=15, seconds=1)
    await _fail(stub, email, 2, _ip())
    assert await _sign_in(stub, email, PASSWORD, _ip()) is None


async def test_a1_failures_outside_the_window_do_not_count(start_identity: Any) -> None:
    """A1: the window slides: failures older than it are forgotten."""
    clock = Clock()
    server = await start_identity(clock=clock, throttle=POLICY)
    stub = server.stub()
    email = _email()
    await _sign_up(stub, email)
    await _fail(stub, email, 2, _ip())
    clock.now = START + dt.timedelta(minutes=16)
    await _fail(stub, email, 2, _ip())
    assert await _sign_in(stub, email, PASSWORD, _ip()) is None


async def test_a1_success_resets_the_account_counter(start_identity: Any) -> None:
    """A1: a successful sign-in clears the account's failures, so N-1 failures before and after
    it never lock."""
    server = await start_identity(clock=Clock(), throttle=POLICY)
    stub = server.stub()
    email = _email()
    await _sign_up(stub, email)
    await _fail(stub, email, 2, _ip())
    assert await _sign_in(stub, email, PASSWORD, _ip()) is None
    await _fail(stub, email, 2, _ip())
    assert await _sign_in(stub, email, PASSWORD, _ip()) is None


async def test_a1_two_replicas_share_the_counters(start_identity: Any) -> None:
    """A1: two identity servers (two service bundles) over one database: failures on
    either count together, and the lockout holds on both."""
    clock = Clock()
    first = (await start_identity(clock=clock, throttle=POLICY)).stub()
    second = (await start_identity(clock=clock, throttle=POLICY)).stub()
    email = _email()
    await _sign_up(first, email)
    await _fail(first, email, 2, _ip())
    await _fail(second, email, 1, _ip())
    for stub in (first, second):
        refused = await _sign_in(stub, email, PASSWORD, _ip())
        assert refused is not None
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a1_unlock_lifts_the_lockout_and_is_audited(
    identity_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    principal_keys: Any,
    outbox_events: OutboxEvents,
) -> None:
    """A1: `unlock(email)` (the admin use case; no RPC yet) lifts the lockout at once, resets the
    count, and is audited as `identity.user.signInUnlocked`; unlocking again reports nothing to
    lift."""
    clock = Clock()
    uow = postgres_unit_of_work(db_session, AuditRecorder("identity", tables.outbox), clock)
    services = IdentityServices.build(
        uow,
        CountingHasher(),
        AssertionSigner(load_private_key(principal_keys[0])),
        clock,
        dt.timedelta(hours=1),
        throttle=POLICY,
    )
    edge = CallContext(caller="gateway", ip="192.0.2.10")
    admin = CallContext(caller="gateway", ip="192.0.2.99")
    email = _email()
    user = await services.accounts.sign_up(email, PASSWORD, "Lin", edge, None)
    for _ in range(3):
        with pytest.raises(UnauthenticatedError, match=BAD_CREDENTIALS):
            await services.sign_in.sign_in(email, "wrong password 123", "", edge, None)
    with pytest.raises(ResourceExhaustedError, match="too many failed sign-in attempts"):
        await services.sign_in.sign_in(email, PASSWORD, "", edge, None)

    assert (
        await services.orgs.unlock(email.upper().replace("EXAMPLE", "example"), admin, None) is True
    )
    assert (await services.sign_in.sign_in(email, PASSWORD, "", edge, None)).user.id == user.id
    assert await services.orgs.unlock(email, admin, None) is False

    unlocked = [e for _, e in await outbox_events() if e.action == "identity.user.signInUnlocked"]
    assert len(unlocked) == 2
    assert unlocked[0].resource_id == str(user.id)
    assert unlocked[0].ip == "192.0.2.99"
    assert unlocked[0].outcome == events_pb2.AUDIT_OUTCOME_SUCCESS
    assert unlocked[0].diff["lifted"] is True
    assert unlocked[1].diff["lifted"] is False


def test_a1_throttle_tables_granted_to_the_service_role(identity_schema: str) -> None:
    """A1: the least-privilege role may read and write the throttle tables."""
    with psycopg.connect(identity_schema) as conn:
        grants = conn.execute(
            "SELECT has_table_privilege('helios_identity', 'identity.sign_in_failures', 'INSERT'),"
            " has_table_privilege('helios_identity', 'identity.sign_in_lockouts', 'DELETE')"
        ).fetchone()
    assert grants == (True, True)
