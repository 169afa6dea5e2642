"""Magic-link sign-in over gRPC against real PostgreSQL (A8): off unless enabled for the
deployment or an org, single use, 15 minutes, only the hash stored, one answer for every address,
rate-capped, the second-factor gate still asks, refused once disabled."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.identity.domain.auth_config import AuthConfig
from helios.identity.service.bundle import StaticAuthConfig
from helios.identity.store import tables
from helios.kernel.clients import call_metadata
from helios.kernel.testing.audit_events import AuditEvents
from helios.proto.audit.v1 import events_pb2
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
BAD_LINK = "this link is invalid or has expired"
EDGE = call_metadata(client_ip="203.0.113.9", user_agent="itest-browser/1.0")
TOKEN = re.compile(r"/magic-link\?token=(hlo_[A-Za-z0-9_-]+)")
ENABLED = StaticAuthConfig(AuthConfig(magic_link_enabled=True))

TableRows = Callable[[Any], Awaitable[list[Any]]]


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _email() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@example.com"


async def _sign_up(stub: Any, email: str) -> str:
    response = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD), metadata=EDGE, timeout=10
    )
    return str(response.user.user_id)


async def _request(stub: Any, email: str) -> identity_pb2.RequestMagicLinkResponse:
    reply: identity_pb2.RequestMagicLinkResponse = await stub.RequestMagicLink(
        identity_pb2.RequestMagicLinkRequest(email=email), metadata=EDGE, timeout=10
    )
    return reply


async def _redeem(stub: Any, token: str) -> identity_pb2.RedeemMagicLinkResponse:
    reply: identity_pb2.RedeemMagicLinkResponse = await stub.RedeemMagicLink(
        identity_pb2.RedeemMagicLinkRequest(token=token), metadata=EDGE, timeout=10
    )
    return reply


async def _link_mails(table_rows: TableRows, to: str) -> list[Any]:
    return [
        row
        for row in await table_rows(tables.mail_outbox)
        if row.to_address == to and row.subject == "Your Helios sign-in link"
    ]


async def _magic_tokens(table_rows: TableRows) -> list[Any]:
    return [row for row in await table_rows(tables.email_tokens) if row.purpose == "magic_link"]


def _token(mail: Any) -> str:
    found = TOKEN.search(mail.body_text)
    assert found is not None, mail.body_text
    return found.group(1)


async def _refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def _org_with_member(db: AsyncConnection, user_id: str, *, magic_links: bool) -> uuid.UUID:
    org_id = uuid.uuid4()
    await db.execute(
        insert(tables.orgs).values(
            id=org_id,
            slug=f"org-{org_id.hex[:12]}",
            name="Analytical Engines",
            created_at=dt.datetime.now(dt.UTC),
            magic_link_enabled=magic_links,
        )
    )
    await db.execute(
        insert(tables.memberships).values(
            org_id=org_id, user_id=uuid.UUID(user_id), user_type="employee"
        )
    )
    return org_id


async def test_a8_magic_link_signs_in_once_and_only_its_hash_is_stored(
    start_identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """A8: with magic links enabled for the deployment, the mailed link (platform sender org)
    opens a session of method magic_link once; the second use is refused; only the sha256 of
    the token is stored; request and sign-in are audited."""
    identity = await start_identity(config=ENABLED)
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    audit = AuditEvents(db_connection, "identity")
    await audit.mark()

    await _request(stub, email)
    await audit.expect_one("identity.user.magicLinkRequest", resource_id=user_id)
    (mail,) = await _link_mails(table_rows, email)
    assert mail.org_id == uuid.UUID(int=0)
    assert "15 minutes" in mail.body_text
    token = _token(mail)
    (stored,) = await _magic_tokens(table_rows)
    assert stored.expires_at - stored.created_at == dt.timedelta(minutes=15)
    assert token.encode() not in bytes(stored.token_hash)

    signed_in = await _redeem(stub, token)
    assert signed_in.session_token
    assert signed_in.session.method == "magic_link"
    assert signed_in.user.user_id == user_id
    assert not signed_in.HasField("second_factor")
    await audit.expect_one("identity.user.signIn", actor_id=user_id, diff={"method": "magic_link"})
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=signed_in.session_token), timeout=10
    )
    assert resolved.principal.actor_id == user_id

    again = await _refused(_redeem(stub, token))
    assert again.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert again.details() == BAD_LINK
    failed = await audit.expect_one(
        "identity.user.signIn", diff={"method": "magic_link", "reason": "bad_link"}
    )
    assert failed.outcome == events_pb2.AUDIT_OUTCOME_FAILURE


async def test_a8_magic_link_expires_after_15_minutes(
    start_identity: Any, table_rows: TableRows
) -> None:
    """A8: a link works until just before 15 minutes have passed and is refused from then on."""
    clock = _Clock()
    identity = await start_identity(config=ENABLED, clock=clock)
    stub = identity.stub()
    email = _email()
    await _sign_up(stub, email)

    await _request(stub, email)
    early = _token((await _link_mails(table_rows, email))[-1])
    clock.now += dt.timedelta(minutes=14, seconds=59)
    assert (await _redeem(stub, early)).session_token

    await _request(stub, email)
    late = _token((await _link_mails(table_rows, email))[-1])
    clock.now += dt.timedelta(minutes=15)
    refused = await _refused(_redeem(stub, late))
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.details() == BAD_LINK


async def test_a8_off_by_default_same_answer_nothing_sent(
    identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """A8: with magic links off (the default) a known address gets the same answer as an unknown
    one and nothing is mailed or stored; the refusal is audited for the known account only."""
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    audit = AuditEvents(db_connection, "identity")
    await audit.mark()

    known = await _request(stub, email)
    failed = await audit.expect_one(
        "identity.user.magicLinkRequest", resource_id=user_id, diff={"refused": "disabled"}
    )
    assert failed.outcome == events_pb2.AUDIT_OUTCOME_FAILURE
    unknown = await _request(stub, _email())
    await audit.expect_none("unknown address")
    assert known.SerializeToString() == unknown.SerializeToString()
    assert await _link_mails(table_rows, email) == []
    assert await _magic_tokens(table_rows) == []


async def test_a8_unknown_email_same_answer_nothing_written(
    start_identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """A8: with magic links on, an unknown address answers exactly like a known one and writes
    nothing (no token, no mail, no audit event); a malformed address is refused as such."""
    identity = await start_identity(config=ENABLED)
    stub = identity.stub()
    email = _email()
    await _sign_up(stub, email)
    known = await _request(stub, email)
    audit = AuditEvents(db_connection, "identity")
    await audit.mark()
    outbox_before = len(await table_rows(tables.mail_outbox))

    unknown = await _request(stub, _email())
    assert unknown.SerializeToString() == known.SerializeToString()
    await audit.expect_none("unknown address")
    assert len(await table_rows(tables.mail_outbox)) == outbox_before
    assert len(await _magic_tokens(table_rows)) == 1

    malformed = await _refused(_request(stub, "not an address"))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a8_enabled_for_an_org_only_its_members_get_links(
    identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """A8: an org's policy enables magic links for its members; others stay without."""
    stub = identity.stub()
    member, outsider = _email(), _email()
    await _org_with_member(db_connection, await _sign_up(stub, member), magic_links=True)
    await _org_with_member(db_connection, await _sign_up(stub, outsider), magic_links=False)

    await _request(stub, member)
    await _request(stub, outsider)
    assert len(await _link_mails(table_rows, member)) == 1
    assert await _link_mails(table_rows, outsider) == []
    signed_in = await _redeem(stub, _token((await _link_mails(table_rows, member))[0]))
    assert signed_in.session.method == "magic_link"


async def test_a8_disabled_between_request_and_redeem_is_refused(
    identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """A8: a link mailed while the org allowed magic links is refused once the org turned them
    off; the attempt is in the user's login history and the link is used up."""
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    org_id = await _org_with_member(db_connection, user_id, magic_links=True)
    await _request(stub, email)
    token = _token((await _link_mails(table_rows, email))[0])

    await db_connection.execute(
        update(tables.orgs).where(tables.orgs.c.id == org_id).values(magic_link_enabled=False)
    )
    refused = await _refused(_redeem(stub, token))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    (event,) = await table_rows(tables.login_events)
    assert (event.method, event.outcome, event.failure_reason) == (
        "magic_link",
        "failure",
        "magic_link_disabled",
    )
    (stored,) = await _magic_tokens(table_rows)
    assert stored.used_at is not None

    await db_connection.execute(
        update(tables.orgs).where(tables.orgs.c.id == org_id).values(magic_link_enabled=True)
    )
    assert (await _refused(_redeem(stub, token))).details() == BAD_LINK


async def test_a8_requests_are_capped_per_account_and_hour(
    start_identity: Any, table_rows: TableRows
) -> None:
    """A8: three links per account and hour; the fourth request answers the same and sends
    nothing; a new link supersedes the older ones; an hour later links flow again."""
    clock = _Clock()
    identity = await start_identity(config=ENABLED, clock=clock)
    stub = identity.stub()
    email = _email()
    await _sign_up(stub, email)
    for _ in range(4):
        await _request(stub, email)
        clock.now += dt.timedelta(seconds=1)
    mails = await _link_mails(table_rows, email)
    assert len(mails) == 3
    assert (await _refused(_redeem(stub, _token(mails[0])))).details() == BAD_LINK

    clock.now += dt.timedelta(hours=1)
    await _request(stub, email)
    assert len(await _link_mails(table_rows, email)) == 4


async def test_a8_second_factor_still_asked_after_a_magic_link(
    start_identity: Any, table_rows: TableRows
) -> None:
    """A8 + A3: a magic link is a first factor only: when a second factor is required the
    redemption answers with a challenge and no session."""
    config = StaticAuthConfig(AuthConfig(magic_link_enabled=True, mfa_required=True))
    identity = await start_identity(config=config)
    stub = identity.stub()
    email = _email()
    await _sign_up(stub, email)
    await _request(stub, email)

    reply = await _redeem(stub, _token((await _link_mails(table_rows, email))[0]))
    assert reply.session_token == ""
    assert not reply.HasField("session")
    assert reply.second_factor.challenge_token
    assert identity_pb2.SECOND_FACTOR_METHOD_EMAIL_OTP in reply.second_factor.methods
    assert await table_rows(tables.sessions) == []
