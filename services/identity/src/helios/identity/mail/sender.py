"""The mail sender: claims due outbox rows, DKIM-signs each message with its org's key, relays it.

Delivery is at least once: a crash between the relay's acceptance and `mark_sent` resends the
message after the lease, with the same Message-ID (``<row id>@<From domain>``) so receivers can
drop the duplicate. A message is never sent unsigned: when keyvault is away the row is retried.
Logs name the row, the org and the recipient's domain only: never a body or a full address.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.policy
import email.utils
import logging
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage

from helios.identity.mail.dkim_keys import KeyvaultDkimKeys
from helios.identity.store.mail import MailOutbox, QueuedMail
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)

__all__ = ["MailRefusedError", "MailSender", "SmtpRelay"]

log = logging.getLogger(__name__)

_PERMANENT = 500  # SMTP 5yz replies: the relay will never accept this message


class MailRefusedError(Exception):
    """The relay refused the message for good (a 5yz reply); `code` is the SMTP reply code."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"SMTP {code}: {text}")
        self.code = code


class SmtpRelay:
    """Submits one message to an SMTP relay with stdlib smtplib in a worker thread, upgrading
    with STARTTLS (certificate verified against the system CAs, or `tls_context`) when `starttls`.
    Raises MailRefusedError for a permanent (5yz) refusal, OSError or smtplib.SMTPException for
    anything worth retrying."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._starttls = starttls
        self._timeout = timeout
        self._tls = tls_context

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Submit `message` (CRLF, already signed) from `sender` to `recipient`."""
        await asyncio.to_thread(self._send, sender, recipient, message)

    def _send(self, sender: str, recipient: str, message: bytes) -> None:
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                if self._starttls:
                    smtp.starttls(context=self._tls or ssl.create_default_context())
                    smtp.ehlo()
                smtp.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as refused:
            codes = [code for code, _ in refused.recipients.values()]
            code = max(codes, default=0)
            if code >= _PERMANENT:
                raise MailRefusedError(code, "recipient refused") from None
            raise smtplib.SMTPException(f"recipient deferred ({code})") from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            if error.smtp_code >= _PERMANENT:
                raw = error.smtp_error
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                raise MailRefusedError(error.smtp_code, text) from None
            raise


def _masked(text: str, address: str) -> str:
    """`text` with the recipient's address reduced to its domain (relays echo addresses)."""
    _, _, domain = address.rpartition("@")
    return text.replace(address, f"***@{domain}")


def _describe(error: BaseException, address: str) -> str:
    detail = str(error) or "no details"
    return _masked(f"{type(error).__name__}: {detail}", address)


class MailSender:
    """Background task sending the mail outbox (the FROM address, the DKIM selector and the
    retry schedule are the deployment's). Replicas may run it side by side (see store/mail.py).

    A failed attempt is retried after `first_retry`, doubling up to `max_retry`; after
    `max_attempts` attempts, or at once on a permanent refusal, the row is given up (body
    blanked, `last_error` kept)."""

    def __init__(
        self,
        outbox: MailOutbox,
        relay: SmtpRelay,
        keys: KeyvaultDkimKeys,
        *,
        mail_from: str,
        dkim_selector: str,
        batch_size: int = 20,
        max_attempts: int = 10,
        first_retry: dt.timedelta = dt.timedelta(seconds=30),
        max_retry: dt.timedelta = dt.timedelta(hours=1),
        lease: dt.timedelta = dt.timedelta(minutes=5),
        idle_seconds: float = 5.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        _, address = email.utils.parseaddr(mail_from)
        local, at, domain = address.rpartition("@")
        if not (local and at and domain) or any(c in mail_from for c in "\r\n"):
            raise InvalidArgumentError("mail_from must be an e-mail address", field="mail_from")
        if batch_size < 1 or max_attempts < 1:
            raise InvalidArgumentError("batch_size and max_attempts must be positive")
        self._outbox = outbox
        self._relay = relay
        self._keys = keys
        self._from_header = mail_from
        self._envelope_from = address
        self._domain = domain.lower()
        self._selector = dkim_selector
        self._batch = batch_size
        self._max_attempts = max_attempts
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._lease = lease
        self._idle = idle_seconds
        self._clock = clock
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Wake the sender now (after a commit that enqueued mail)."""
        self._wake.set()

    def _message(self, mail: QueuedMail, message_id: str) -> bytes:
        message = EmailMessage(policy=email.policy.SMTP)
        message["From"] = self._from_header
        message["To"] = mail.to_address
        message["Subject"] = mail.subject
        message["Date"] = email.utils.format_datetime(mail.created_at.astimezone(dt.UTC))
        message["Message-ID"] = message_id
        message.set_content(mail.body_text)
        return message.as_bytes()

    def _retry_delay(self, attempts: int) -> dt.timedelta:
        delay: dt.timedelta = self._first_retry * (2 ** min(attempts - 1, 30))
        return min(delay, self._max_retry)

    async def _deliver(self, mail: QueuedMail) -> bool:
        """One attempt at `mail`; True when the relay accepted it."""
        message_id = mail.message_id or f"<{mail.id.hex}@{self._domain}>"
        _, _, rcpt_domain = mail.to_address.rpartition("@")
        where = {"mail_id": str(mail.id), "org_id": str(mail.org_id), "rcpt_domain": rcpt_domain}
        try:
            signer = await self._keys.signer(mail.org_id, self._domain, self._selector)
            try:
                signed = await signer.sign_message(self._message(mail, message_id))
            except (NotFoundError, PermissionDeniedError, FailedPreconditionError):
                self._keys.forget(mail.org_id)  # destroyed or replaced key: look it up again
                raise
            await self._relay.send(self._envelope_from, mail.to_address, signed)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            reason = _describe(error, mail.to_address)
            if isinstance(error, MailRefusedError) or mail.attempts >= self._max_attempts:
                log.warning("mail given up", extra={**where, "error": reason})
                await self._outbox.give_up(mail.id, message_id, reason, self._max_attempts)
            else:
                retry_at = self._clock() + self._retry_delay(mail.attempts)
                log.info("mail deferred", extra={**where, "error": reason})
                await self._outbox.retry_later(mail.id, message_id, reason, retry_at)
            return False
        await self._outbox.mark_sent(mail.id, message_id, self._clock())
        log.info("mail sent", extra=where)
        return True

    async def send_pending(self) -> int:
        """Claim one batch of due mail and attempt each; returns how many rows were claimed.
        Raises only when PostgreSQL fails (claimed rows then wait for their lease)."""
        batch = await self._outbox.claim_due(
            self._clock(), self._batch, self._lease, self._max_attempts
        )
        for mail in batch:
            await self._deliver(mail)
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set: batches back to back while full, otherwise every
        `idle_seconds` or on `notify`; backs off (up to 60 s) while PostgreSQL is away."""
        backoff = self._idle
        while not stop.is_set():
            try:
                claimed = await self.send_pending()
                backoff = self._idle
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("mail sender failed; retrying", extra={"error": repr(exc)})
                claimed = 0
                backoff = min(backoff * 2, 60.0)
            if claimed >= self._batch:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            _, pending = await asyncio.wait(
                waiters, timeout=backoff, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
