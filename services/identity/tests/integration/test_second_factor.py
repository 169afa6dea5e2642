"""Second factors over gRPC against real PostgreSQL and a real in-process keyvault (A3, A9):
TOTP (sealed at rest, +-1 step, each step once), single-use backup codes, e-mailed codes (5 wrong
attempts, 10 minutes), the sign-in challenge (forced by TOTP, an org or the deployment), and
remembered devices that skip it until revoked. The clock is driven, never slept on."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.domain.auth_config import AuthConfig
from helios.identity.keyvault_sealer import KeyvaultRowSealer
from helios.identity.service.bundle import StaticAuthConfig
from helios.identity.store import tables
from helios.kernel.clients import call_metadata
from helios.proto.audit.v1 import events_pb2
from helios.proto.identity.v1 import identity_pb2
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

PASSWORD = "correct horse battery staple"
EDGE = call_metadata(client_ip="203.0.113.7", user_agent="itest-browser/3.0")
TOTP = identity_pb2.SECOND_FACTOR_METHOD_TOTP
BACKUP = identity_pb2.SECOND_FACTOR_METHOD_BACKUP_CODE
EMAIL = identity_pb2.SECOND_FACTOR_METHOD_EMAIL_OTP
PUSH = identity_pb2.SECOND_FACTOR_METHOD_PUSH
CHALLENGE_GONE = "this sign-in is unknown or no longer valid: sign in again"
WRONG_CODE = "the code is wrong, expired or already used"

OutboxEvents = Callable[[], Awaitable[list[tuple[str, events_pb2.AuditEvent]]]]
TableRows = Callable[[Any], Awaitable[list[Any]]]
Metadata = tuple[tuple[str, str | bytes], ...]


@dataclass
class Clock:
    """A settable clock (starts now)."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Account:
    """A signed-up user and the metadata of calls made in one of their sessions."""

    email: str
    user_id: str
    metadata: Metadata


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(
    start_identity: Any, keyvault_stub: keyvault_pb2_grpc.KeyvaultServiceStub, clock: Clock
) -> Any:
    """Identity with TOTP secrets sealed by the real keyvault, on the driven clock. keyvault
    commits and its root key is new in every test, so each test seals in an org of its own."""
    sealer = KeyvaultRowSealer(keyvault_stub, str(uuid.uuid4()), "identity-totp")  # type: ignore[arg-type]
    return await start_identity(clock=clock, totp_sealer=sealer)


async def _account(stub: Any) -> Account:
    """Sign up and sign in (no second factor yet)."""
    email = f"ada.{uuid.uuid4().hex[:10]}@example.com"
    created = await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD, display_name="Ada"),
        metadata=EDGE,
        timeout=10,
    )
    signed_in = await _sign_in(stub, email)
    resolved = await stub.ResolveSession(
        identity_pb2.ResolveSessionRequest(session_token=signed_in.session_token),
        metadata=EDGE,
        timeout=10,
    )
    metadata = call_metadata(
        assertion=resolved.assertion, client_ip="203.0.113.7", user_agent="itest-browser/3.0"
    )
    return Account(email=email, user_id=created.user.user_id, metadata=metadata)


async def _sign_in(stub: Any, email: str, device_token: str = "") -> Any:
    return await stub.SignIn(
        identity_pb2.SignInRequest(email=email, password=PASSWORD, device_token=device_token),
        metadata=EDGE,
        timeout=10,
    )


async def _enrol_totp(stub: Any, account: Account, clock: Clock) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol and confirm TOTP; returns the authenticator and the first backup codes. The clock
    then moves one step on, so that the confirming code's step lies behind."""
    enrolled = await stub.EnrollTotp(
        identity_pb2.EnrollTotpRequest(), metadata=account.metadata, timeout=10
    )
    secret = parse_qs(urlsplit(enrolled.otpauth_uri).query)["secret"][0]
    totp = pyotp.TOTP(secret)
    confirmed = await stub.ConfirmTotp(
        identity_pb2.ConfirmTotpRequest(code=totp.at(clock.now)),
        metadata=account.metadata,
        timeout=10,
    )
    clock.advance(seconds=30)
    return totp, list(confirmed.backup_codes)


async def _complete(
    stub: Any, token: str, method: int, code: str = "", remember: bool = False
) -> Any:
    return await stub.CompleteSecondFactor(
        identity_pb2.CompleteSecondFactorRequest(
            challenge_token=token, method=method, code=code, remember_device=remember
        ),
        metadata=EDGE,
        timeout=10,
    )


async def _refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def _otp_mails(table_rows: TableRows, to: str) -> dict[uuid.UUID, str]:
    """id -> body of every sign-in code mail queued for `to`."""
    return {
        row.id: row.body_text
        for row in await table_rows(tables.mail_outbox)
        if row.to_address == to and row.subject == "Your Helios sign-in code"
    }


async def _send_code(stub: Any, table_rows: TableRows, to: str, token: str) -> str:
    """SendEmailOtp, then the 6-digit code of the one mail it queued."""
    before = await _otp_mails(table_rows, to)
    await stub.SendEmailOtp(
        identity_pb2.SendEmailOtpRequest(challenge_token=token), metadata=EDGE, timeout=10
    )
    after = await _otp_mails(table_rows, to)
    (body,) = [text for mail_id, text in after.items() if mail_id not in before]
    found = re.search(r"\b(\d{6})\b", body)
    assert found is not None
    return found.group(1)


async def _actions(outbox_events: OutboxEvents) -> list[tuple[str, int, str]]:
    """(action, outcome, reason) of every audit event so far."""
    events = [event for _, event in await outbox_events()]
    return [
        (
            event.action,
            event.outcome,
            str(event.diff.fields["reason"].string_value) if "reason" in event.diff.fields else "",
        )
        for event in events
    ]


async def test_a3_totp_user_gets_a_challenge_not_a_session_from_the_password(
    server: Any, clock: Clock, table_rows: TableRows
) -> None:
    """A3: once TOTP is confirmed, the password alone opens no session: SignIn answers a
    challenge (token stored only as its hash, 10 minutes, methods TOTP, backup codes, e-mail);
    the TOTP secret is sealed at rest (HRS1) and never stored in clear."""
    stub = server.stub()
    account = await _account(stub)
    totp, codes = await _enrol_totp(stub, account, clock)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    sessions_before = len(await table_rows(tables.sessions))

    reply = await _sign_in(stub, account.email)

    assert reply.session_token == ""
    assert not reply.HasField("session")
    challenge = reply.second_factor
    assert challenge.challenge_token
    assert list(challenge.methods) == [TOTP, BACKUP, EMAIL]
    assert challenge.expires_at.ToDatetime(dt.UTC) == clock.now + dt.timedelta(minutes=10)
    assert len(await table_rows(tables.sessions)) == sessions_before
    (stored,) = await table_rows(tables.sign_in_challenges)
    assert stored.token_hash != challenge.challenge_token.encode()
    assert challenge.challenge_token.encode() not in bytes(stored.token_hash)
    (credential,) = await table_rows(tables.totp_credentials)
    assert bytes(credential.secret).startswith(b"HRS1")
    assert totp.secret.encode() not in bytes(credential.secret)

    status = await stub.GetMfaStatus(
        identity_pb2.GetMfaStatusRequest(), metadata=account.metadata, timeout=10
    )
    assert status.totp_enrolled is True
    assert status.backup_codes_remaining == 10


async def test_a3_enrolment_returns_otpauth_uri_and_svg_qr_and_needs_a_right_code(
    server: Any, clock: Clock
) -> None:
    """A3: EnrollTotp answers an otpauth URI (issuer Helios, account = e-mail) and an SVG QR
    code; ConfirmTotp refuses a wrong code and leaves TOTP off; no sign-in challenge then."""
    stub = server.stub()
    account = await _account(stub)
    enrolled = await stub.EnrollTotp(
        identity_pb2.EnrollTotpRequest(), metadata=account.metadata, timeout=10
    )
    uri = urlsplit(enrolled.otpauth_uri)
    assert uri.scheme == "otpauth"
    assert uri.netloc == "totp"
    assert parse_qs(uri.query)["issuer"] == ["Helios"]
    assert account.email.replace("@", "%40") in uri.path or account.email in uri.path
    assert enrolled.qr_svg.lstrip().startswith("<svg")
    assert "</svg>" in enrolled.qr_svg

    refused = await _refused(
        stub.ConfirmTotp(
            identity_pb2.ConfirmTotpRequest(code="000000"), metadata=account.metadata, timeout=10
        )
    )
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    reply = await _sign_in(stub, account.email)
    assert reply.session_token
    assert not reply.HasField("second_factor")


async def test_a3_used_totp_code_refused(server: Any, clock: Clock, table_rows: TableRows) -> None:
    """A3: a TOTP code opens a session (method totp) once; the same code (same time step) is
    refused at the next sign-in, as is one of an older step; a code of a newer step works."""
    stub = server.stub()
    account = await _account(stub)
    totp, _ = await _enrol_totp(stub, account, clock)

    first = await _sign_in(stub, account.email)
    code = totp.at(clock.now)
    done = await _complete(stub, first.second_factor.challenge_token, TOTP, code)
    assert done.session_token.startswith("hls_")
    assert done.session.method == "totp"
    assert done.user.email == account.email
    assert done.device_token == ""

    again = await _sign_in(stub, account.email)
    replay = await _refused(_complete(stub, again.second_factor.challenge_token, TOTP, code))
    assert replay.code() == grpc.StatusCode.UNAUTHENTICATED
    assert replay.details() == WRONG_CODE
    older = totp.at(clock.now - dt.timedelta(seconds=30))
    stale = await _refused(_complete(stub, again.second_factor.challenge_token, TOTP, older))
    assert stale.details() == WRONG_CODE

    clock.advance(seconds=30)
    fresh = await _complete(stub, again.second_factor.challenge_token, TOTP, totp.at(clock.now))
    assert fresh.session.method == "totp"
    (credential,) = await table_rows(tables.totp_credentials)
    assert credential.last_used_step == int(clock.now.timestamp()) // 30


async def test_a3_wrong_totp_code_refused_counted_and_audited(
    server: Any, clock: Clock, table_rows: TableRows, outbox_events: OutboxEvents
) -> None:
    """A3: a wrong TOTP code is refused (UNAUTHENTICATED), counts on the challenge and on the
    account throttle, and is audited as a failed sign-in step; the challenge still completes with
    a right code afterwards, and the completion closes it for good."""
    stub = server.stub()
    account = await _account(stub)
    totp, _ = await _enrol_totp(stub, account, clock)
    token = (await _sign_in(stub, account.email)).second_factor.challenge_token
    right = totp.at(clock.now)
    wrong = "000000" if right != "000000" else "111111"

    refused = await _refused(_complete(stub, token, TOTP, wrong))

    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    (stored,) = await table_rows(tables.sign_in_challenges)
    assert stored.attempts == 1
    failures = await table_rows(tables.sign_in_failures)
    assert {row.scope for row in failures} == {"account", "ip"}
    actions = await _actions(outbox_events)
    assert ("identity.user.signIn", events_pb2.AUDIT_OUTCOME_FAILURE, "wrong_code") in actions

    done = await _complete(stub, token, TOTP, right)
    assert done.session.method == "totp"
    closed = await _refused(_complete(stub, token, TOTP, totp.at(clock.now)))
    assert closed.details() == CHALLENGE_GONE


async def test_a3_backup_code_works_once_and_regenerating_replaces_all(
    server: Any, clock: Clock, table_rows: TableRows
) -> None:
    """A3: a backup code opens a session once (method backup_code) and is refused the second
    time; only hashes are stored; GetMfaStatus counts what is left; RegenerateBackupCodes
    replaces all 10 (an old unused code stops working)."""
    stub = server.stub()
    account = await _account(stub)
    _, codes = await _enrol_totp(stub, account, clock)
    stored = await table_rows(tables.backup_codes)
    assert len(stored) == 10
    assert all(code.encode() not in bytes(row.code_hash) for row in stored for code in codes)

    token = (await _sign_in(stub, account.email)).second_factor.challenge_token
    done = await _complete(stub, token, BACKUP, codes[0].lower())
    assert done.session.method == "backup_code"

    token = (await _sign_in(stub, account.email)).second_factor.challenge_token
    reused = await _refused(_complete(stub, token, BACKUP, codes[0]))
    assert reused.details() == WRONG_CODE
    status = await stub.GetMfaStatus(
        identity_pb2.GetMfaStatusRequest(), metadata=account.metadata, timeout=10
    )
    assert status.backup_codes_remaining == 9

    fresh = await stub.RegenerateBackupCodes(
        identity_pb2.RegenerateBackupCodesRequest(), metadata=account.metadata, timeout=10
    )
    assert len(fresh.backup_codes) == 10
    assert not set(fresh.backup_codes) & set(codes)
    old = await _refused(_complete(stub, token, BACKUP, codes[1]))
    assert old.details() == WRONG_CODE
    done = await _complete(stub, token, BACKUP, fresh.backup_codes[3])
    assert done.session.method == "backup_code"


async def test_a3_email_otp_capped_at_five_wrong_attempts(
    server: Any,
    clock: Clock,
    table_rows: TableRows,
    outbox_events: OutboxEvents,
    db_session: async_sessionmaker[AsyncSession],
) -> None:
    """A3: an org requiring 2FA forces a challenge on a user with no factor (EMAIL_OTP only);
    the 6-digit code is mailed (only its hash stored); after 5 wrong codes the challenge is
    closed and the 6th attempt is refused even with the right code; a resend is refused too."""
    stub = server.stub()
    account = await _account(stub)
    await _org_requiring_mfa(db_session, account.user_id)
    challenge = (await _sign_in(stub, account.email)).second_factor
    assert list(challenge.methods) == [EMAIL]

    code = await _send_code(stub, table_rows, account.email, challenge.challenge_token)
    (otp,) = await table_rows(tables.email_otps)
    assert otp.expires_at == clock.now + dt.timedelta(minutes=10)
    assert code.encode() not in bytes(otp.code_hash)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        refused = await _refused(_complete(stub, challenge.challenge_token, EMAIL, wrong))
        assert refused.details() == WRONG_CODE

    sixth = await _refused(_complete(stub, challenge.challenge_token, EMAIL, code))
    assert sixth.code() == grpc.StatusCode.UNAUTHENTICATED
    assert sixth.details() == CHALLENGE_GONE
    resend = await _refused(
        stub.SendEmailOtp(
            identity_pb2.SendEmailOtpRequest(challenge_token=challenge.challenge_token),
            metadata=EDGE,
            timeout=10,
        )
    )
    assert resend.details() == CHALLENGE_GONE
    actions = await _actions(outbox_events)
    assert (
        actions.count(("identity.user.signIn", events_pb2.AUDIT_OUTCOME_FAILURE, "wrong_code")) == 5
    )
    assert ("identity.user.signIn", events_pb2.AUDIT_OUTCOME_FAILURE, "challenge_gone") in actions
    assert ("identity.mfa.emailOtpSend", events_pb2.AUDIT_OUTCOME_SUCCESS, "") in actions


async def test_a3_email_otp_expires_and_a_resend_replaces_the_code(
    server: Any, clock: Clock, table_rows: TableRows, db_session: async_sessionmaker[AsyncSession]
) -> None:
    """A3: a resent code replaces the earlier one (which stops working) and a right, fresh code
    opens a session with method email_otp; a challenge gets at most 5 mails; a right code after
    its 10 minutes is refused."""
    stub = server.stub()
    account = await _account(stub)
    await _org_requiring_mfa(db_session, account.user_id)
    token = (await _sign_in(stub, account.email)).second_factor.challenge_token
    first = await _send_code(stub, table_rows, account.email, token)
    second = await _send_code(stub, table_rows, account.email, token)
    if first != second:
        replaced = await _refused(_complete(stub, token, EMAIL, first))
        assert replaced.details() == WRONG_CODE
    done = await _complete(stub, token, EMAIL, second)
    assert done.session.method == "email_otp"

    token = (await _sign_in(stub, account.email)).second_factor.challenge_token
    for _ in range(5):
        code = await _send_code(stub, table_rows, account.email, token)
    sixth = await _refused(
        stub.SendEmailOtp(
            identity_pb2.SendEmailOtpRequest(challenge_token=token), metadata=EDGE, timeout=10
        )
    )
    assert sixth.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    clock.advance(minutes=10, seconds=1)
    expired = await _refused(_complete(stub, token, EMAIL, code))
    assert expired.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a3_deployment_requiring_mfa_forces_the_challenge(start_identity: Any) -> None:
    """A3: with the deployment's auth_config mfa_required, a user without any factor and in no
    org gets a challenge (EMAIL_OTP) instead of a session."""
    server = await start_identity(config=StaticAuthConfig(AuthConfig(mfa_required=True)))
    stub = server.stub()
    email = f"eve.{uuid.uuid4().hex[:10]}@example.com"
    await stub.SignUp(
        identity_pb2.SignUpRequest(email=email, password=PASSWORD), metadata=EDGE, timeout=10
    )
    reply = await _sign_in(stub, email)
    assert reply.session_token == ""
    assert list(reply.second_factor.methods) == [EMAIL]


async def test_a3_forged_or_unknown_challenge_token_refused(
    server: Any, clock: Clock, outbox_events: OutboxEvents
) -> None:
    """A3: a forged token, an empty one and an expired challenge all get the same refusal from
    CompleteSecondFactor and SendEmailOtp, audited; a method the challenge does not offer is
    INVALID_ARGUMENT, and UNSPECIFIED too."""
    stub = server.stub()
    account = await _account(stub)
    totp, _ = await _enrol_totp(stub, account, clock)
    for token in ("hlo_" + "A" * 43, ""):
        forged = await _refused(_complete(stub, token, TOTP, totp.at(clock.now)))
        assert forged.code() == grpc.StatusCode.UNAUTHENTICATED
        assert forged.details() == CHALLENGE_GONE
        send = await _refused(
            stub.SendEmailOtp(
                identity_pb2.SendEmailOtpRequest(challenge_token=token), metadata=EDGE, timeout=10
            )
        )
        assert send.details() == CHALLENGE_GONE

    token = (await _sign_in(stub, account.email)).second_factor.challenge_token
    push = await _refused(_complete(stub, token, PUSH))
    assert push.code() == grpc.StatusCode.INVALID_ARGUMENT
    unspecified = await _refused(_complete(stub, token, 0, "123456"))
    assert unspecified.code() == grpc.StatusCode.INVALID_ARGUMENT
    clock.advance(minutes=10)
    expired = await _refused(_complete(stub, token, TOTP, totp.at(clock.now)))
    assert expired.details() == CHALLENGE_GONE
    actions = await _actions(outbox_events)
    assert ("identity.user.signIn", events_pb2.AUDIT_OUTCOME_FAILURE, "challenge_gone") in actions
    assert (
        "identity.user.signIn",
        events_pb2.AUDIT_OUTCOME_FAILURE,
        "method_not_offered",
    ) in actions
    assert ("identity.mfa.emailOtpSend", events_pb2.AUDIT_OUTCOME_FAILURE, "") in actions


async def test_a9_remembered_device_skips_2fa_until_revoked(
    server: Any, clock: Clock, table_rows: TableRows, outbox_events: OutboxEvents
) -> None:
    """A9: remember_device returns a device token (stored as its hash, 30 days); the next
    sign-in with it opens a session at once and records the device's last use and IP; another
    user's sign-in with it is still challenged; after RevokeRememberedDevice the next sign-in
    is challenged again; the device list shows it until then."""
    stub = server.stub()
    account = await _account(stub)
    totp, _ = await _enrol_totp(stub, account, clock)
    token = (await _sign_in(stub, account.email)).second_factor.challenge_token
    done = await _complete(stub, token, TOTP, totp.at(clock.now), remember=True)
    device_token = done.device_token
    assert device_token.startswith("hld_")
    (stored,) = await table_rows(tables.remembered_devices)
    assert stored.token_hash != device_token.encode()
    assert stored.expires_at == clock.now + dt.timedelta(days=30)

    clock.advance(hours=1)
    used_at = clock.now
    skipped = await _sign_in(stub, account.email, device_token)
    assert skipped.session_token.startswith("hls_")
    assert not skipped.HasField("second_factor")
    other = await _account(stub)
    await _enrol_totp(stub, other, clock)
    assert (await _sign_in(stub, other.email, device_token)).HasField("second_factor")

    listed = await stub.ListRememberedDevices(
        identity_pb2.ListRememberedDevicesRequest(), metadata=account.metadata, timeout=10
    )
    (device,) = listed.devices
    assert device.device_id == str(stored.id)
    assert device.ip == "203.0.113.7"
    assert device.user_agent == "itest-browser/3.0"
    assert device.last_used_at.ToDatetime(dt.UTC) == used_at
    foreign = await _refused(
        stub.RevokeRememberedDevice(
            identity_pb2.RevokeRememberedDeviceRequest(device_id=device.device_id),
            metadata=other.metadata,
            timeout=10,
        )
    )
    assert foreign.code() == grpc.StatusCode.NOT_FOUND

    await stub.RevokeRememberedDevice(
        identity_pb2.RevokeRememberedDeviceRequest(device_id=device.device_id),
        metadata=account.metadata,
        timeout=10,
    )

    again = await _sign_in(stub, account.email, device_token)
    assert again.session_token == ""
    assert again.HasField("second_factor")
    listed = await stub.ListRememberedDevices(
        identity_pb2.ListRememberedDevicesRequest(), metadata=account.metadata, timeout=10
    )
    assert list(listed.devices) == []
    actions = {action for action, _, _ in await _actions(outbox_events)}
    assert {
        "identity.mfa.totpEnroll",
        "identity.mfa.totpConfirm",
        "identity.user.secondFactorRequired",
        "identity.device.remember",
        "identity.device.use",
        "identity.device.revoke",
    } <= actions


async def test_a9_remembered_device_expires(server: Any, clock: Clock) -> None:
    """A9: a remembered device stops skipping the second factor after its lifetime."""
    stub = server.stub()
    account = await _account(stub)
    totp, _ = await _enrol_totp(stub, account, clock)
    token = (await _sign_in(stub, account.email)).second_factor.challenge_token
    device_token = (
        await _complete(stub, token, TOTP, totp.at(clock.now), remember=True)
    ).device_token
    clock.advance(days=30, seconds=1)
    assert (await _sign_in(stub, account.email, device_token)).HasField("second_factor")


async def _org_requiring_mfa(sessions: async_sessionmaker[AsyncSession], user_id: str) -> None:
    """Make the user a member of a new org whose policy requires a second factor."""
    org_id = uuid.uuid4()
    async with sessions() as session, session.begin():
        await session.execute(
            tables.orgs.insert().values(
                id=org_id,
                slug=f"strict-{org_id.hex[:8]}",
                name="Strict",
                created_at=dt.datetime.now(dt.UTC),
                require_mfa=True,
            )
        )
        await session.execute(
            tables.memberships.insert().values(
                org_id=org_id, user_id=uuid.UUID(user_id), user_type="member"
            )
        )
