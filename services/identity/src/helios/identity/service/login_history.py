"""Login history (S5): every sign-in attempt of a known user, written by the sign-in transaction,
listed newest first to the user and to their org's admins.

Retention: events are kept for `HistoryPolicy.retention` (180 days by default,
HELIOS_LOGIN_HISTORY_RETENTION_DAYS) and at most `max_events_per_user` per user (1000); both are
enforced when an event is written (older rows are deleted in the same transaction). Attempts on
unknown accounts have no history: they are in the audit log only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from dataclasses import dataclass

from helios.identity.domain.model import Session, SignInMethod, User
from helios.identity.domain.sign_in_records import LoginCursor, LoginEvent, LoginOutcome
from helios.identity.ports import Authorizer, Clock, IdentityTransaction, UnitOfWork
from helios.identity.service.device_alerts import device_fingerprint
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "LIST_PERMISSION",
    "MAX_PAGE_SIZE",
    "HistoryPage",
    "HistoryPolicy",
    "LoginHistory",
]

LIST_PERMISSION = "identity.loginHistory.list"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_BAD_PAGE_TOKEN = "page_token is not one this service returned"  # noqa: S105 - a message


@dataclass(frozen=True, slots=True)
class HistoryPolicy:
    """How long and how much history is kept."""

    retention: dt.timedelta = dt.timedelta(days=180)
    max_events_per_user: int = 1000

    def __post_init__(self) -> None:
        if self.retention <= dt.timedelta(0) or self.max_events_per_user < 1:
            raise ValueError("retention and max_events_per_user must be positive")


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Events newest first; `next_page_token` is '' on the last page."""

    events: list[LoginEvent]
    next_page_token: str


def _page_token(event: LoginEvent) -> str:
    raw = f"{event.occurred_at.isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(page_token: str) -> LoginCursor | None:
    if not page_token:
        return None
    try:
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)).decode()
        when, _, number = raw.partition("|")
        cursor = LoginCursor(occurred_at=dt.datetime.fromisoformat(when), id=int(number))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgumentError(_BAD_PAGE_TOKEN, field="page_token") from None
    if cursor.occurred_at.tzinfo is None:
        raise InvalidArgumentError(_BAD_PAGE_TOKEN, field="page_token")
    return cursor


def _page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgumentError("page_size must not be negative", field="page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class LoginHistory:
    """A SignInObserver that writes the history, and the use case that lists it."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        authorizer: Authorizer,
        policy: HistoryPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authorizer = authorizer
        self._policy = policy or HistoryPolicy()

    async def opened(
        self, tx: IdentityTransaction, user: User, session: Session, ctx: CallContext
    ) -> None:
        await self._write(tx, user, session.method, LoginOutcome.SUCCESS, "", ctx)

    async def failed(
        self,
        tx: IdentityTransaction,
        user: User | None,
        method: SignInMethod,
        reason: str,
        ctx: CallContext,
    ) -> None:
        if user is not None:
            await self._write(tx, user, method.value, LoginOutcome.FAILURE, reason, ctx)

    async def _write(
        self,
        tx: IdentityTransaction,
        user: User,
        method: str,
        outcome: LoginOutcome,
        reason: str,
        ctx: CallContext,
    ) -> None:
        now = self._clock()
        event = LoginEvent(
            user_id=user.id,
            occurred_at=now,
            method=method,
            outcome=outcome,
            ip=ctx.ip,
            city=ctx.city,
            country=ctx.country,
            user_agent=ctx.user_agent,
            device_id=device_fingerprint(user.id, ctx),
            failure_reason=reason,
        )
        await tx.add_login_event(
            event, now - self._policy.retention, self._policy.max_events_per_user
        )

    async def list(
        self, user_id: str, page_size: int, page_token: str, ctx: CallContext
    ) -> HistoryPage:
        """The caller's own history (`user_id` empty or theirs), or, with
        `identity.loginHistory.list` at scope any in the caller's org, the history of a member of
        that org. Raises InvalidArgumentError (bad id, size or token), PermissionDeniedError
        (someone else's without the permission) or NotFoundError (not a member of the org)."""
        principal = ctx.require_principal()
        limit = _page_size(page_size)
        after = _cursor(page_token)
        own = uuid.UUID(principal.actor_id)
        try:
            target = uuid.UUID(user_id) if user_id else own
        except ValueError:
            raise InvalidArgumentError("user_id is not a user id", field="user_id") from None
        org_id: uuid.UUID | None = None
        if target != own:
            if not principal.org_id or not await self._authorizer.allowed(
                principal, LIST_PERMISSION, org_id=principal.org_id, owner_id=str(target)
            ):
                raise PermissionDeniedError("you may not see another user's sign-in history")
            org_id = uuid.UUID(principal.org_id)
        async with self._uow() as tx:
            if org_id is not None and not await tx.is_org_member(org_id, target):
                raise NotFoundError("no such user in this organization", field="user_id")
            events = await tx.login_events_of(target, limit + 1, after)
        more = len(events) > limit
        events = events[:limit]
        return HistoryPage(events=events, next_page_token=_page_token(events[-1]) if more else "")
