"""Login history over gRPC against real PostgreSQL (S5): every sign-in outcome of a known user
with time, IP, geo, device, method and reason; newest first with opaque paging; one's own, or a
member's with the permission; bounded by retention and a per-user cap."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.identity.domain.sign_in_records import LoginEvent, LoginOutcome
from helios.identity.store import tables
from helios.identity.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.clients import call_metadata
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
EDGE = call_metadata(client_ip="203.0.113.9", user_agent=FIREFOX)

TableRows = Callable[[Any], Awaitable[list[Any]]]


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


class OrgAdmins:
    """Stands in for authz's Check (identity may not depend on the authz service; the end-to-end
    journey asks the real one): allows `identity.loginHistory.list` to the listed admins, in
    their own org, for a resource owned by someone else; records every question."""

    def __init__(self, *admins: str) -> None:
        self.admins = set(admins)
        self.asked: list[tuple[str, str, str, str]] = []

    async def allowed(
        self,
        principal: principal_pb2.Principal,
        permission: str,
        *,
        org_id: str = "",
        owner_id: str = "",
    ) -> bool:
        self.asked.append((principal.actor_id, permission, org_id, owner_id))
        return (
            principal.actor_id in self.admins
            and permission == "identity.loginHistory.list"
            and org_id == principal.org_id
        )


def _email() -> str:
    return f"lin.{uuid.uuid4().hex[:10]}@example.com"


async def _sign_up(stub: Any, email: str) -> str:
    response = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD), metadata=EDGE, timeout=10
    )
    return str(response.user.user_id)


async def _sign_in(stub: Any, email: str, metadata: Any = EDGE, password: str = PASSWORD) -> Any:
    """Sign in; returns the metadata of calls made within that session (as the gateway)."""
    signed_in = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=password), metadata=metadata, timeout=10
    )
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=signed_in.session_token), timeout=10
    )
    return call_metadata(assertion=resolved.assertion, client_ip="203.0.113.9")


async def _fail_sign_in(stub: Any, email: str, metadata: Any = EDGE) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.SignIn(
            identity_pb2.SignInRequest(email=email, password="wrong password!"),
            metadata=metadata,
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def _history(
    stub: Any, session: Any, user_id: str = "", page_size: int = 0, page_token: str = ""
) -> identity_pb2.ListLoginHistoryResponse:
    reply: identity_pb2.ListLoginHistoryResponse = await stub.ListLoginHistory(
        identity_pb2.ListLoginHistoryRequest(
            user_id=user_id, page_size=page_size, page_token=page_token
        ),
        metadata=session,
        timeout=10,
    )
    return reply


async def _refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def _join_new_org(db: AsyncConnection, *user_ids: str) -> uuid.UUID:
    org_id = uuid.uuid4()
    await db.execute(
        insert(tables.orgs).values(
            id=org_id,
            slug=f"org-{org_id.hex[:12]}",
            name="Looms",
            created_at=dt.datetime.now(dt.UTC),
        )
    )
    for user_id in user_ids:
        await db.execute(
            insert(tables.memberships).values(
                org_id=org_id, user_id=uuid.UUID(user_id), user_type="employee"
            )
        )
    return org_id


async def test_s5_history_lists_successes_and_failures_with_method_ip_geo_and_device(
    identity: Any,
) -> None:
    """S5: a failed and a successful password sign-in are both in the user's history, newest
    first, with time, IP, city, country, user agent, device id, method, outcome and reason."""
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    geo = call_metadata(client_ip="198.51.100.20", user_agent=FIREFOX, city="Zürich", country="CH")
    await _fail_sign_in(stub, email, geo)
    session = await _sign_in(stub, email, geo)

    reply = await _history(stub, session)
    success, failure = reply.events
    assert reply.next_page_token == ""
    assert (success.outcome, success.method, success.failure_reason) == ("success", "password", "")
    assert (failure.outcome, failure.method, failure.failure_reason) == (
        "failure",
        "password",
        "bad_credentials",
    )
    for event in (success, failure):
        assert event.user_id == user_id
        assert (event.ip, event.city, event.country) == ("198.51.100.20", "Zürich", "CH")
        assert event.user_agent == FIREFOX
        assert len(event.device_id) == 32
        assert abs(event.time.ToDatetime(dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(
            minutes=1
        )
    assert success.device_id == failure.device_id
    assert success.time.ToDatetime(dt.UTC) >= failure.time.ToDatetime(dt.UTC)


async def test_s5_unknown_accounts_have_no_history(identity: Any, table_rows: TableRows) -> None:
    """S5: attempts on an address with no account are audited but write no history."""
    await _fail_sign_in(identity.stub(), _email())
    assert await table_rows(tables.login_events) == []


async def test_s5_pages_newest_first_with_an_opaque_token(start_identity: Any) -> None:
    """S5: paging walks the history newest first without gaps or repeats; a page token that the
    service did not hand out and a negative page size are refused."""
    clock = _Clock()
    identity = await start_identity(clock=clock)
    stub = identity.stub()
    email = _email()
    await _sign_up(stub, email)
    for _ in range(4):
        await _fail_sign_in(stub, email)
        clock.now += dt.timedelta(seconds=1)
    session = await _sign_in(stub, email)

    seen: list[identity_pb2.LoginEvent] = []
    token = ""
    pages = 0
    while True:
        reply = await _history(stub, session, page_size=2, page_token=token)
        seen.extend(reply.events)
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert pages == 3
    assert [event.outcome for event in seen] == ["success"] + ["failure"] * 4
    times = [event.time.ToDatetime(dt.UTC) for event in seen]
    assert times == sorted(times, reverse=True)
    assert len(set(times)) == 5

    bad = await _refused(_history(stub, session, page_token="not-a-token"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    negative = await _refused(_history(stub, session, page_size=-1))
    assert negative.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_s5_non_admin_cannot_read_another_users_history(
    start_identity: Any, db_connection: AsyncConnection
) -> None:
    """S5: without `identity.loginHistory.list` at scope any, another member's history is
    refused, even in the same org."""
    authorizer = OrgAdmins()
    identity = await start_identity(authorizer=authorizer)
    stub = identity.stub()
    mallory, victim = _email(), _email()
    mallory_id = await _sign_up(stub, mallory)
    victim_id = await _sign_up(stub, victim)
    org_id = await _join_new_org(db_connection, mallory_id, victim_id)
    await _sign_in(stub, victim)
    session = await _sign_in(stub, mallory)

    refused = await _refused(_history(stub, session, user_id=victim_id))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert authorizer.asked == [(mallory_id, "identity.loginHistory.list", str(org_id), victim_id)]
    assert [e.user_id for e in (await _history(stub, session, user_id=mallory_id)).events] == [
        mallory_id
    ]


async def test_s5_admin_reads_members_history_but_not_outsiders(
    start_identity: Any, db_connection: AsyncConnection
) -> None:
    """S5: an admin of the org (authz says yes) reads a member's history; a user outside the
    org is not found; a malformed user id is refused."""
    admin, member, outsider = _email(), _email(), _email()
    authorizer = OrgAdmins()
    identity = await start_identity(authorizer=authorizer)
    stub = identity.stub()
    admin_id = await _sign_up(stub, admin)
    member_id = await _sign_up(stub, member)
    outsider_id = await _sign_up(stub, outsider)
    authorizer.admins.add(admin_id)
    await _join_new_org(db_connection, admin_id, member_id)
    await _sign_in(stub, member)
    await _sign_in(stub, outsider)
    session = await _sign_in(stub, admin)

    events = (await _history(stub, session, user_id=member_id)).events
    assert [(e.user_id, e.outcome) for e in events] == [(member_id, "success")]
    missing = await _refused(_history(stub, session, user_id=outsider_id))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    malformed = await _refused(_history(stub, session, user_id="nobody"))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_s5_events_older_than_180_days_are_deleted_on_write(
    start_identity: Any, table_rows: TableRows
) -> None:
    """S5: retention: the next write removes events older than 180 days (anyone's)."""
    clock = _Clock()
    identity = await start_identity(clock=clock)
    stub = identity.stub()
    old, new = _email(), _email()
    await _sign_up(stub, old)
    await _sign_up(stub, new)
    await _fail_sign_in(stub, old)
    clock.now += dt.timedelta(days=179)
    await _fail_sign_in(stub, new)
    assert len(await table_rows(tables.login_events)) == 2

    clock.now += dt.timedelta(days=1, seconds=1)
    await _fail_sign_in(stub, new)
    kept = await table_rows(tables.login_events)
    assert len(kept) == 2
    assert {row.occurred_at for row in kept} == {
        clock.now - dt.timedelta(days=1, seconds=1),
        clock.now,
    }


async def test_s5_a_users_history_is_capped(
    identity: Any, db_session: async_sessionmaker[AsyncSession], table_rows: TableRows
) -> None:
    """S5: beyond the per-user cap the oldest of that user's events go (store level)."""
    user_id = uuid.UUID(await _sign_up(identity.stub(), _email()))
    uow = postgres_unit_of_work(
        db_session, AuditRecorder("identity", tables.outbox), lambda: dt.datetime.now(dt.UTC)
    )
    start = dt.datetime.now(dt.UTC)
    for minute in range(5):
        async with uow() as tx:
            await tx.add_login_event(
                LoginEvent(
                    user_id=user_id,
                    occurred_at=start + dt.timedelta(minutes=minute),
                    method="password",
                    outcome=LoginOutcome.FAILURE,
                    failure_reason="bad_credentials",
                ),
                keep_after=start - dt.timedelta(days=180),
                keep_per_user=3,
            )
    kept = sorted(row.occurred_at for row in await table_rows(tables.login_events))
    assert kept == [start + dt.timedelta(minutes=m) for m in (2, 3, 4)]
