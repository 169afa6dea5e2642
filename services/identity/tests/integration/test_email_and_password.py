"""E-mail verification, password reset and password change over gRPC against real PostgreSQL:
mailed one-time tokens, single use, no enumeration, sessions revoked, every change audited (A1)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.identity.service.account_mail import AccountMail
from helios.identity.store import tables
from helios.kernel.clients import call_metadata
from helios.kernel.testing.audit_events import AuditEvents
from helios.proto.audit.v1 import events_pb2
from helios.proto.identity.v1 import identity_pb2

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "purple elephant juggling saxophones"
BAD_LINK = "this link is invalid or has expired"
BAD_CREDENTIALS = "invalid e-mail or password"
EDGE = call_metadata(client_ip="203.0.113.9", user_agent="itest-browser/1.0")
TOKEN = re.compile(r"\?token=(hlo_[A-Za-z0-9_-]+)")

TableRows = Callable[[Any], Awaitable[list[Any]]]


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _email() -> str:
    return f"grace.{uuid.uuid4().hex[:10]}@example.com"


async def _mails(table_rows: TableRows, to: str) -> list[Any]:
    return [row for row in await table_rows(tables.mail_outbox) if row.to_address == to]


def _token(mail: Any, page: str) -> str:
    assert f"/{page}?token=" in mail.body_text
    found = TOKEN.search(mail.body_text)
    assert found is not None
    return found.group(1)


async def _sign_up(stub: Any, email: str) -> str:
    response = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD), metadata=EDGE, timeout=10
    )
    return str(response.user.user_id)


async def _sign_in(stub: Any, email: str, password: str = PASSWORD) -> Any:
    """Sign in and return the metadata of calls made within that session (as the gateway)."""
    signed_in = await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=password), metadata=EDGE, timeout=10
    )
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=signed_in.session_token), timeout=10
    )
    return signed_in.session_token, call_metadata(
        assertion=resolved.assertion, client_ip="203.0.113.9", user_agent="itest-browser/1.0"
    )


async def _refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def _session_active(stub: Any, token: str) -> bool:
    try:
        await stub.ResolveSession(
            identity_pb2.ResolveSessionRequest(session_token=token), timeout=10
        )
    except grpc.aio.AioRpcError as error:
        refusal = error.code()
    else:
        return True
    assert refusal == grpc.StatusCode.UNAUTHENTICATED
    return False


async def test_a1_sign_up_mails_one_verification_token_that_verifies_once(
    identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """A1: sign-up queues exactly one verification mail (platform sender org) whose token
    verifies the address once; only the token's hash is stored; the verification is audited."""
    audit = AuditEvents(db_connection, "identity")
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    await audit.expect_one("identity.user.signUp", resource_id=user_id)

    (mail,) = await _mails(table_rows, email)
    assert mail.org_id == uuid.UUID(int=0)
    assert mail.subject == "Verify your Helios e-mail address"
    token = _token(mail, "verify-email")
    (stored,) = await table_rows(tables.email_tokens)
    assert stored.purpose == "verify_email"
    assert stored.used_at is None
    assert stored.expires_at - stored.created_at == dt.timedelta(hours=24)
    assert token.encode() not in bytes(stored.token_hash)

    verified = await stub.VerifyEmail(
        identity_pb2.VerifyEmailRequest(token=token), metadata=EDGE, timeout=10
    )
    assert verified.user.user_id == user_id
    assert verified.user.email_verified is True
    await audit.expect_one(
        "identity.user.verifyEmail",
        resource_id=user_id,
        actor_id=user_id,
        outcome=events_pb2.AUDIT_OUTCOME_SUCCESS,
    )

    again = await _refused(stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=token)))
    assert again.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert again.details() == BAD_LINK
    await audit.expect_none("a reused token")


@pytest.mark.parametrize("token", ["", "garbage", "hlo_" + "A" * 43])
async def test_a1_verify_email_garbage_token_is_refused(identity: Any, token: str) -> None:
    """A1: a token never issued gets the one refusal."""
    error = await _refused(
        identity.stub().VerifyEmail(identity_pb2.VerifyEmailRequest(token=token))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == BAD_LINK


async def test_a1_verify_email_expired_token_is_refused(
    start_identity: Any, table_rows: TableRows
) -> None:
    """A1: a verification token is refused once its lifetime is over."""
    clock = _Clock()
    stub = (await start_identity(clock=clock)).stub()
    email = _email()
    await _sign_up(stub, email)
    (mail,) = await _mails(table_rows, email)
    clock.now += dt.timedelta(hours=24)
    error = await _refused(
        stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=_token(mail, "verify-email")))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == BAD_LINK


async def test_a1_reset_request_for_unknown_email_answers_the_same_and_writes_nothing(
    identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """A1: no enumeration: an unknown address gets the same empty answer, and no mail, token or
    event is written for it."""
    audit = AuditEvents(db_connection, "identity")
    stub = identity.stub()
    known = _email()
    await _sign_up(stub, known)
    await audit.mark()
    mails_before = len(await table_rows(tables.mail_outbox))

    unknown = await stub.RequestPasswordReset(
        identity_pb2.RequestPasswordResetRequest(email=_email()), metadata=EDGE, timeout=10
    )
    assert len(await table_rows(tables.mail_outbox)) == mails_before
    assert len(await table_rows(tables.email_tokens)) == 1  # the sign-up's verification token
    await audit.expect_none("a reset for an unknown address")

    answered = await stub.RequestPasswordReset(
        identity_pb2.RequestPasswordResetRequest(email=known), metadata=EDGE, timeout=10
    )
    assert answered.SerializeToString() == unknown.SerializeToString() == b""
    assert len(await _mails(table_rows, known)) == 2


async def test_a1_password_reset_end_to_end(
    identity: Any, table_rows: TableRows, db_connection: AsyncConnection
) -> None:
    """A1: the mailed reset token sets a new password once: the old password stops working, the
    new one works, every session is revoked; a weak password leaves the token usable."""
    audit = AuditEvents(db_connection, "identity")
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    first, _ = await _sign_in(stub, email)
    second, _ = await _sign_in(stub, email)
    await audit.mark()

    await stub.RequestPasswordReset(
        identity_pb2.RequestPasswordResetRequest(email=email.upper()), metadata=EDGE, timeout=10
    )
    await audit.expect_one("identity.user.passwordResetRequest", resource_id=user_id)
    reset_mails = [m for m in await _mails(table_rows, email) if "reset" in m.subject.lower()]
    (mail,) = reset_mails
    token = _token(mail, "reset-password")

    weak = await _refused(
        stub.ResetPassword(identity_pb2.ResetPasswordRequest(token=token, new_password="short"))
    )
    assert weak.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert weak.details() != BAD_LINK
    await audit.expect_none("a weak new password")

    await stub.ResetPassword(
        identity_pb2.ResetPasswordRequest(token=token, new_password=NEW_PASSWORD),
        metadata=EDGE,
        timeout=10,
    )
    await audit.expect_one(
        "identity.user.passwordReset", resource_id=user_id, diff={"sessions_revoked": 2}
    )
    assert not await _session_active(stub, first)
    assert not await _session_active(stub, second)

    old = await _refused(
        stub.SignIn(identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10)
    )
    assert old.code() == grpc.StatusCode.UNAUTHENTICATED
    assert old.details() == BAD_CREDENTIALS
    fresh, _ = await _sign_in(stub, email, NEW_PASSWORD)
    assert await _session_active(stub, fresh)
    await audit.mark()

    reused = await _refused(
        stub.ResetPassword(
            identity_pb2.ResetPasswordRequest(token=token, new_password="another fine passphrase")
        )
    )
    assert reused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reused.details() == BAD_LINK
    await audit.expect_none("a reused reset token")
    assert await _session_active(stub, fresh)


async def test_a1_reset_token_is_superseded_expires_and_is_capped(
    start_identity: Any, table_rows: TableRows
) -> None:
    """A1: a newer reset token invalidates the older one, a token expires after its lifetime,
    and requests beyond the hourly cap answer the same but mail nothing."""
    clock = _Clock()
    server = await start_identity(
        clock=clock, account_mail=AccountMail(reset_max_per_hour=2, public_url="https://h.test")
    )
    stub = server.stub()
    email = _email()
    await _sign_up(stub, email)
    request = identity_pb2.RequestPasswordResetRequest(email=email)
    for _ in range(3):
        await stub.RequestPasswordReset(request, timeout=10)
    older, newer = [
        _token(m, "reset-password")
        for m in sorted(await _mails(table_rows, email), key=lambda m: m.created_at)
        if "reset" in m.subject.lower()
    ]
    assert "https://h.test/reset-password?token=" in str(
        [m.body_text for m in await _mails(table_rows, email)]
    )

    superseded = await _refused(
        stub.ResetPassword(
            identity_pb2.ResetPasswordRequest(token=older, new_password=NEW_PASSWORD)
        )
    )
    assert superseded.details() == BAD_LINK
    clock.now += dt.timedelta(hours=1)
    expired = await _refused(
        stub.ResetPassword(
            identity_pb2.ResetPasswordRequest(token=newer, new_password=NEW_PASSWORD)
        )
    )
    assert expired.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expired.details() == BAD_LINK


async def test_a1_change_password(identity: Any, db_connection: AsyncConnection) -> None:
    """A1: a wrong current password is refused (and audited as a failure); a weak new one is
    refused; a right one changes the password and revokes the other sessions, not this one."""
    audit = AuditEvents(db_connection, "identity")
    stub = identity.stub()
    email = _email()
    user_id = await _sign_up(stub, email)
    other, _ = await _sign_in(stub, email)
    current, metadata = await _sign_in(stub, email)
    await audit.mark()

    wrong = await _refused(
        stub.ChangePassword(
            identity_pb2.ChangePasswordRequest(
                current_password="not my password at all", new_password=NEW_PASSWORD
            ),
            metadata=metadata,
            timeout=10,
        )
    )
    assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
    await audit.expect_one(
        "identity.user.passwordChange",
        resource_id=user_id,
        outcome=events_pb2.AUDIT_OUTCOME_FAILURE,
    )

    weak = await _refused(
        stub.ChangePassword(
            identity_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="short"),
            metadata=metadata,
            timeout=10,
        )
    )
    assert weak.code() == grpc.StatusCode.INVALID_ARGUMENT
    await audit.expect_none("a weak new password")

    anonymous = await _refused(
        stub.ChangePassword(
            identity_pb2.ChangePasswordRequest(
                current_password=PASSWORD, new_password=NEW_PASSWORD
            ),
            timeout=10,
        )
    )
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    await audit.expect_none("an anonymous call")

    await stub.ChangePassword(
        identity_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=NEW_PASSWORD),
        metadata=metadata,
        timeout=10,
    )
    await audit.expect_one(
        "identity.user.passwordChange",
        resource_id=user_id,
        actor_id=user_id,
        outcome=events_pb2.AUDIT_OUTCOME_SUCCESS,
        diff={"sessions_revoked": 1},
    )
    assert await _session_active(stub, current)
    assert not await _session_active(stub, other)
    old = await _refused(
        stub.SignIn(identity_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10)
    )
    assert old.details() == BAD_CREDENTIALS
    await _sign_in(stub, email, NEW_PASSWORD)
