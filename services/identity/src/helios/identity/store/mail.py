"""The mail outbox in PostgreSQL: use cases enqueue in their transaction, senders claim due rows.

A row is claimed by moving its `next_attempt_at` a lease into the future (and counting the
attempt) in a short transaction of its own, picking rows with ``FOR UPDATE SKIP LOCKED``: replicas
share the work, and a sender that dies mid-send leaves the row to be retried after the lease.
Bodies may hold one-time links, so `mark_sent` and `give_up` blank `body_text`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.identity.store.tables import mail_outbox
from helios.kernel.errors import InvalidArgumentError

__all__ = ["MAX_BODY", "MAX_SUBJECT", "MailOutbox", "QueuedMail", "enqueue"]

MAX_SUBJECT = 200
MAX_BODY = 100_000
_MAX_ADDRESS = 254
_MAX_ERROR = 500


def _check_line(value: str, field: str, limit: int) -> str:
    if not value or len(value) > limit or any(c in value for c in "\r\n\0"):
        raise InvalidArgumentError(f"{field} must be 1-{limit} characters on one line", field=field)
    return value


def _check_address(address: str) -> str:
    _check_line(address, "to", _MAX_ADDRESS)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c in address for c in " <>,;\t"):
        raise InvalidArgumentError("to must be a bare e-mail address", field="to")
    return address


async def enqueue(
    session: AsyncSession, org_id: uuid.UUID, to: str, subject: str, body: str
) -> uuid.UUID:
    """Queue a plain-text message to `to` inside the caller's open transaction (no commit here):
    it is sent only if that transaction commits. Returns the row id. Raises InvalidArgumentError
    for an address that is not one bare address, a subject not on one line, or an oversized
    body (nothing is written then)."""
    _check_address(to)
    _check_line(subject, "subject", MAX_SUBJECT)
    if len(body) > MAX_BODY or "\0" in body:
        raise InvalidArgumentError(f"body must be at most {MAX_BODY} characters", field="body")
    mail_id = uuid.uuid4()
    await session.execute(
        mail_outbox.insert().values(
            id=mail_id, org_id=org_id, to_address=to, subject=subject, body_text=body
        )
    )
    return mail_id


@dataclass(frozen=True)
class QueuedMail:
    """A claimed message; `attempts` counts this attempt; `message_id` is None until the first
    attempt chose one (retries reuse it, so receivers can drop duplicates)."""

    id: uuid.UUID
    org_id: uuid.UUID
    to_address: str
    subject: str
    body_text: str
    attempts: int
    message_id: str | None
    created_at: dt.datetime


class MailOutbox:
    """The sender's side of the outbox; every method runs in its own committed transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim_due(
        self, now: dt.datetime, limit: int, lease: dt.timedelta, max_attempts: int
    ) -> list[QueuedMail]:
        """Up to `limit` unsent rows due at `now` with fewer than `max_attempts` attempts, oldest
        first; each gets one more attempt and is hidden from other senders until `now + lease`."""
        t = mail_outbox
        due = (
            select(t.c.id)
            .where(t.c.sent_at.is_(None), t.c.next_attempt_at <= now, t.c.attempts < max_attempts)
            .order_by(t.c.next_attempt_at, t.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(t)
            .where(t.c.id.in_(due))
            .values(attempts=t.c.attempts + 1, next_attempt_at=now + lease)
            .returning(
                t.c.id,
                t.c.org_id,
                t.c.to_address,
                t.c.subject,
                t.c.body_text,
                t.c.attempts,
                t.c.message_id,
                t.c.created_at,
            )
        )
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(claim)).all()
        claimed = [
            QueuedMail(
                id=r.id,
                org_id=r.org_id,
                to_address=r.to_address,
                subject=r.subject,
                body_text=r.body_text,
                attempts=r.attempts,
                message_id=r.message_id,
                created_at=r.created_at,
            )
            for r in rows
        ]
        return sorted(claimed, key=lambda m: (m.created_at, m.id))

    async def mark_sent(self, mail_id: uuid.UUID, message_id: str, at: dt.datetime) -> None:
        """The message was accepted by the relay: record it and blank the body (idempotent)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(mail_outbox)
                .where(mail_outbox.c.id == mail_id)
                .values(sent_at=at, message_id=message_id, body_text="", last_error=None)
            )

    async def retry_later(
        self, mail_id: uuid.UUID, message_id: str, error: str, next_attempt_at: dt.datetime
    ) -> None:
        """The attempt failed: keep the body, try again at `next_attempt_at`."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(mail_outbox)
                .where(mail_outbox.c.id == mail_id, mail_outbox.c.sent_at.is_(None))
                .values(
                    message_id=message_id,
                    last_error=error[:_MAX_ERROR],
                    next_attempt_at=next_attempt_at,
                )
            )

    async def give_up(
        self, mail_id: uuid.UUID, message_id: str, error: str, max_attempts: int
    ) -> None:
        """The message cannot be delivered (a permanent refusal or the last attempt failed):
        blank the body and never pick it again (attempts is raised to `max_attempts`)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(mail_outbox)
                .where(mail_outbox.c.id == mail_id, mail_outbox.c.sent_at.is_(None))
                .values(
                    message_id=message_id,
                    last_error=error[:_MAX_ERROR],
                    body_text="",
                    attempts=max_attempts,
                )
            )
