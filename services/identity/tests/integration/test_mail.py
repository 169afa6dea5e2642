"""Outbound mail (A1's mails, E3 signing) against real PostgreSQL, a real in-process keyvault over
mTLS holding each org's DKIM key, and a real SMTP sink (aiosmtpd) on an ephemeral port.

The mail outbox is shared by replicas through committed rows and row locks, so these tests use
committed transactions on their own engine (and delete their rows) instead of the rolled-back
test connection; keyvault runs on its own engine too, so that concurrent Sign calls do not
share one connection."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import dkim
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.mail import KeyvaultDkimKeys, MailSender, SmtpRelay
from helios.identity.store import tables
from helios.identity.store.mail import MailOutbox, enqueue
from helios.kernel.db import create_engine
from helios.kernel.dkim import dkim_dns_name, dkim_txt_record
from helios.kernel.errors import InvalidArgumentError
from helios.kernel.testing.servers import free_port
from helios.proto.keyvault.v1 import keyvault_pb2 as kv
from helios.proto.keyvault.v1 import keyvault_pb2_grpc

DOMAIN, SELECTOR = "mail.helios.example", "helios1"
MAIL_FROM = f"Helios <no-reply@{DOMAIN}>"
LINK = "https://app.helios.example/verify?token=one-time-secret"
KEYVAULT_SERVICE = "helios.proto.keyvault.v1.KeyvaultService"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Sink:
    """aiosmtpd handler keeping every envelope it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(  # noqa: N802 - the hook name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    @property
    def messages(self) -> list[bytes]:
        return [bytes(e.original_content or b"") for e in self.envelopes]


@dataclass
class SmtpSink:
    """A real SMTP server on 127.0.0.1:`port` in the test's event loop; `start`/`stop` bring it
    up and down on the same port."""

    port: int
    sink: Sink = field(default_factory=Sink)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SMTP(self.sink), "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    """An SMTP sink on a free port, not started (tests start it: some begin with it down)."""
    sink = SmtpSink(free_port())
    try:
        yield sink
    finally:
        await sink.stop()


@pytest.fixture
async def mail_sessions(identity_schema: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Committing sessions on the migrated identity schema; the mail outbox is emptied around
    the test (no other test commits to it)."""
    engine = create_engine(identity_schema)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        await session.execute(delete(tables.mail_outbox))
    try:
        yield sessions
    finally:
        async with sessions() as session, session.begin():
            await session.execute(delete(tables.mail_outbox))
        await engine.dispose()


@dataclass
class Clock:
    """A settable clock (starts now)."""

    now: dt.datetime = field(default_factory=_now)

    def __call__(self) -> dt.datetime:
        return self.now


def _sender(
    sessions: async_sessionmaker[AsyncSession],
    stub: keyvault_pb2_grpc.KeyvaultServiceStub,
    sink: SmtpSink,
    clock: Callable[[], dt.datetime] = _now,
) -> MailSender:
    """A sender wired like production: plain SMTP (the sink offers no TLS), the org's DKIM key."""
    return MailSender(
        MailOutbox(sessions),
        SmtpRelay("127.0.0.1", sink.port, starttls=False, timeout=5.0),
        KeyvaultDkimKeys(stub),  # type: ignore[arg-type]
        mail_from=MAIL_FROM,
        dkim_selector=SELECTOR,
        clock=clock,
    )


async def _enqueue(
    sessions: async_sessionmaker[AsyncSession], org: uuid.UUID, to: str, subject: str, body: str
) -> uuid.UUID:
    async with sessions() as session, session.begin():
        return await enqueue(session, org, to, subject, body)


async def _row(sessions: async_sessionmaker[AsyncSession], mail_id: uuid.UUID) -> Any:
    async with sessions() as session:
        return (
            await session.execute(
                select(tables.mail_outbox).where(tables.mail_outbox.c.id == mail_id)
            )
        ).one()


async def _txt(stub: keyvault_pb2_grpc.KeyvaultServiceStub, org: uuid.UUID) -> str:
    """The TXT value to publish for the org's `dkim` key (keyvault GetPublicKey)."""
    keys = (
        await stub.ListKeys(kv.ListKeysRequest(org_id=str(org), purpose=kv.KEY_PURPOSE_SIGNING))
    ).keys
    (key,) = [k for k in keys if k.name == "dkim"]
    assert key.algorithm == kv.KEY_ALGORITHM_RSA_2048_PKCS1_SHA256
    jwks = await stub.GetPublicKey(kv.GetPublicKeyRequest(org_id=str(org), key_id=key.key_id))
    (jwk,) = jwks.keys
    return dkim_txt_record({f.name: v for f, v in jwk.ListFields()})


def _dns(txt: str) -> Any:
    expected = f"{dkim_dns_name(SELECTOR, DOMAIN)}.".encode()
    return lambda name, timeout=5: txt.encode() if name == expected else b""


async def test_a1_mail_enqueued_in_a_rolled_back_transaction_is_never_sent(
    mail_sessions: async_sessionmaker[AsyncSession],
    keyvault_stub: keyvault_pb2_grpc.KeyvaultServiceStub,
    smtp_sink: SmtpSink,
) -> None:
    """A1: mail enqueued by a use case whose transaction rolls back leaves no row and no mail."""
    await smtp_sink.start()
    async with mail_sessions() as session:
        transaction = await session.begin()
        await enqueue(session, uuid.uuid4(), "ada@example.net", "Verify", LINK)
        await transaction.rollback()

    assert await _sender(mail_sessions, keyvault_stub, smtp_sink).send_pending() == 0
    assert smtp_sink.sink.envelopes == []


async def test_e3_committed_mail_is_sent_once_dkim_signed_and_its_body_blanked(
    mail_sessions: async_sessionmaker[AsyncSession],
    keyvault_stub: keyvault_pb2_grpc.KeyvaultServiceStub,
    smtp_sink: SmtpSink,
) -> None:
    """E3 (and A1's mails): a committed message reaches the relay exactly once with its subject
    and body, signed with the org's `dkim` key (created in keyvault on first use) so that dkimpy
    verifies it against the TXT value from GetPublicKey; the stored body is then blank."""
    await smtp_sink.start()
    org = uuid.uuid4()
    mail_id = await _enqueue(mail_sessions, org, "ada@example.net", "Verify your e-mail", LINK)
    sender = _sender(mail_sessions, keyvault_stub, smtp_sink)

    assert await sender.send_pending() == 1
    assert await sender.send_pending() == 0

    (envelope,) = smtp_sink.sink.envelopes
    assert envelope.mail_from == f"no-reply@{DOMAIN}"
    assert envelope.rcpt_tos == ["ada@example.net"]
    (raw,) = smtp_sink.sink.messages
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Verify your e-mail"
    assert parsed["From"] == MAIL_FROM
    assert parsed["To"] == "ada@example.net"
    assert parsed["Message-ID"] == f"<{mail_id.hex}@{DOMAIN}>"
    assert parsed["Date"]
    assert parsed.get_body().get_content().strip() == LINK  # type: ignore[union-attr]
    assert raw.startswith(b"DKIM-Signature:")
    assert f"d={DOMAIN};".encode() in raw
    assert f"s={SELECTOR};".encode() in raw

    txt = await _txt(keyvault_stub, org)
    assert dkim.verify(raw, dnsfunc=_dns(txt)) is True
    assert dkim.verify(raw.replace(b"one-time-secret", b"one-time-secreT"), dnsfunc=_dns(txt)) is (
        False
    )

    row = await _row(mail_sessions, mail_id)
    assert row.sent_at is not None
    assert row.body_text == ""
    assert row.message_id == f"<{mail_id.hex}@{DOMAIN}>"
    assert row.attempts == 1
    assert row.last_error is None


async def test_a1_mail_waits_while_the_relay_is_down_then_is_delivered(
    mail_sessions: async_sessionmaker[AsyncSession],
    keyvault_stub: keyvault_pb2_grpc.KeyvaultServiceStub,
    smtp_sink: SmtpSink,
) -> None:
    """A1: with the SMTP relay down the row stays, one attempt counted and the next one
    scheduled in the future (body kept, error without the address); it is not retried before
    then, and once the relay is back and the time has come it is delivered and blanked."""
    org = uuid.uuid4()
    mail_id = await _enqueue(mail_sessions, org, "bob@example.org", "Reset your password", LINK)
    clock = Clock()
    sender = _sender(mail_sessions, keyvault_stub, smtp_sink, clock)

    assert await sender.send_pending() == 1
    row = await _row(mail_sessions, mail_id)
    assert row.sent_at is None
    assert row.attempts == 1
    assert row.next_attempt_at > clock.now
    assert row.body_text == LINK
    assert row.last_error
    assert "bob@example.org" not in row.last_error

    await smtp_sink.start()
    assert await sender.send_pending() == 0  # not due yet
    assert smtp_sink.sink.envelopes == []

    clock.now = row.next_attempt_at + dt.timedelta(seconds=1)
    assert await sender.send_pending() == 1
    assert len(smtp_sink.sink.envelopes) == 1
    row = await _row(mail_sessions, mail_id)
    assert row.sent_at is not None
    assert row.attempts == 2
    assert row.body_text == ""
    assert row.last_error is None


async def test_a1_two_senders_over_one_database_send_each_message_once(
    mail_sessions: async_sessionmaker[AsyncSession],
    keyvault_stub: keyvault_pb2_grpc.KeyvaultServiceStub,
    smtp_sink: SmtpSink,
) -> None:
    """A1: two replicas' senders running side by side (each with its own key cache, racing to
    create the org's DKIM key) deliver every queued message exactly once."""
    await smtp_sink.start()
    org = uuid.uuid4()
    sent = [
        await _enqueue(mail_sessions, org, f"user{i}@example.net", f"Message {i}", f"Body {i}")
        for i in range(30)
    ]
    first = _sender(mail_sessions, keyvault_stub, smtp_sink)
    second = _sender(mail_sessions, keyvault_stub, smtp_sink)

    async def drain(sender: MailSender) -> int:
        total = 0
        while claimed := await sender.send_pending():
            total += claimed
        return total

    counts = await asyncio.gather(drain(first), drain(second))

    assert sum(counts) == len(sent)
    subjects = sorted(
        email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
        for raw in smtp_sink.sink.messages
    )
    assert subjects == sorted(f"Message {i}" for i in range(30))
    txt = await _txt(keyvault_stub, org)  # one `dkim` key for the org despite the race
    assert all(dkim.verify(raw, dnsfunc=_dns(txt)) for raw in smtp_sink.sink.messages)
    async with mail_sessions() as session:
        unsent = (
            await session.execute(
                select(tables.mail_outbox.c.id).where(tables.mail_outbox.c.sent_at.is_(None))
            )
        ).all()
    assert unsent == []


async def test_a1_enqueue_refuses_header_injection(
    mail_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A1: a recipient or subject carrying a line break (header injection) or a list of
    addresses is refused before anything is written."""
    org = uuid.uuid4()
    for to, subject in [
        ("ada@example.net\r\nBcc: eve@example.com", "Hi"),
        ("ada@example.net, eve@example.com", "Hi"),
        ("not-an-address", "Hi"),
        ("ada@example.net", "Hi\r\nBcc: eve@example.com"),
        ("ada@example.net", ""),
    ]:
        with pytest.raises(InvalidArgumentError):
            await _enqueue(mail_sessions, org, to, subject, "body")
    async with mail_sessions() as session:
        assert (await session.execute(select(tables.mail_outbox))).all() == []
