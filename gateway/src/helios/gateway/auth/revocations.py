"""Revocations the session cache cookie must not outlive (S3): a short-lived deny set of session
and user ids, fed by identity's audit events on NATS and by the revoke RPCs this replica transcodes.

An entry lives as long as a cache cookie sealed before it could still be presented (the cookie's
60 s plus the clock skew verifiers allow), so memory stays bounded. While an entry lives, the
cache cookies of its session (or of every session of its user) are ignored and the session is
resolved again at identity, which refuses a revoked one. If NATS is away, the cookie's own
60 seconds still bound how long another replica serves a revoked session.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from google.protobuf.message import DecodeError, Message
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from helios.gateway.auth.cache_cookie import CACHE_SECONDS, CLOCK_SKEW
from helios.kernel.bus import AUDIT_STREAM, Bus, audit_subject
from helios.kernel.retrying import retry_until_done
from helios.proto.audit.v1 import events_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.identity.v1 import identity_pb2

__all__ = [
    "FEED_SUBJECT",
    "REVOKED_FOR",
    "SESSION_ACTIONS",
    "USER_ACTIONS",
    "RevocationFeed",
    "Revocations",
    "revocation_hooks",
]

log = logging.getLogger(__name__)

REVOKED_FOR = dt.timedelta(seconds=CACHE_SECONDS) + CLOCK_SKEW
FEED_SUBJECT = audit_subject("identity", ">")
SESSION_ACTIONS = frozenset(
    {"identity.session.revoke", "identity.session.signOut", "identity.impersonation.stop"}
)
"""Audit actions of identity whose resource_id is a session that just ended."""
USER_ACTIONS = frozenset(
    {"iam.user.revokeSessions", "identity.user.passwordReset", "identity.user.passwordChange"}
)
"""Audit actions of identity whose resource_id is a user whose sessions (some or all) ended."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Revocations:
    """Session ids and user ids whose cache cookies are refused until their entry expires."""

    def __init__(self, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self._clock = clock
        # id -> end of the entry; insertion order is expiry order (re-inserted on renewal)
        self._sessions: dict[str, dt.datetime] = {}
        self._users: dict[str, dt.datetime] = {}

    def __len__(self) -> int:
        """Entries held (expired ones are dropped at the next write)."""
        return len(self._sessions) + len(self._users)

    def _add(self, entries: dict[str, dt.datetime], key: str) -> None:
        now = self._clock()
        for table in (self._sessions, self._users):
            while table and next(iter(table.values())) <= now:
                table.pop(next(iter(table)))
        entries.pop(key, None)
        entries[key] = now + REVOKED_FOR

    def revoke_session(self, session_id: str) -> None:
        """Refuse the cache cookies of this session from now on (for REVOKED_FOR)."""
        if session_id:
            self._add(self._sessions, session_id)

    def revoke_user(self, user_id: str) -> None:
        """Refuse the cache cookies of every session of this user from now on (for
        REVOKED_FOR); a new session of theirs is resolved on each request meanwhile."""
        if user_id:
            self._add(self._users, user_id)

    def refuses(self, principal: principal_pb2.Principal) -> bool:
        """Whether a cached assertion of `principal` must be resolved again."""
        now = self._clock()
        for table, key in (
            (self._sessions, principal.session_id),
            (self._users, principal.actor_id),
        ):
            until = table.get(key)
            if until is not None and now < until:
                return True
        return False

    def apply(self, event: events_pb2.AuditEvent) -> None:
        """Take in one of identity's audit events; other actions and failures are ignored."""
        if event.outcome == events_pb2.AUDIT_OUTCOME_FAILURE:
            return
        if event.action in SESSION_ACTIONS:
            self.revoke_session(event.resource_id)
        elif event.action in USER_ACTIONS:
            self.revoke_user(event.resource_id)


class RevocationFeed:
    """Feeds identity's audit events from the AUDIT stream into a Revocations set: an ordered
    (ephemeral) JetStream consumer starting REVOKED_FOR back, so that a replica that starts or
    reconnects learns what its peers may still have cached. Retries while NATS is away."""

    def __init__(
        self, bus: Bus, revocations: Revocations, clock: Callable[[], dt.datetime] = _utc_now
    ) -> None:
        self._bus = bus
        self._revocations = revocations
        self._clock = clock
        self.subscribed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set."""

        async def attempt() -> None:
            js = await self._bus.jetstream()
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=self._clock() - REVOKED_FOR,
                inactive_threshold=REVOKED_FOR.total_seconds(),
            )
            subscription = await js.subscribe(
                FEED_SUBJECT, stream=AUDIT_STREAM, ordered_consumer=True, config=config
            )
            self.subscribed.set()
            try:
                while not stop.is_set():
                    try:
                        message = await subscription.next_msg(timeout=1)
                    except NatsTimeoutError:
                        continue
                    try:
                        event = events_pb2.AuditEvent.FromString(message.data)
                    except DecodeError:
                        log.warning("unreadable audit event", extra={"subject": message.subject})
                        continue
                    self._revocations.apply(event)
            finally:
                self.subscribed.clear()
                await subscription.unsubscribe()

        await retry_until_done("revocation feed", attempt, stop, log)


def revocation_hooks(revocations: Revocations) -> dict[str, Callable[[Message], None]]:
    """After-success hooks of the transcoded revoke RPCs (by RPC path): this replica stops
    honouring the revoked cache cookies before it answers the revoke."""
    service = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name

    def session(request: Message) -> None:
        assert isinstance(request, identity_pb2.RevokeSessionRequest)
        revocations.revoke_session(request.session_id)

    def user(request: Message) -> None:
        assert isinstance(request, identity_pb2.RevokeUserSessionsRequest)
        revocations.revoke_user(request.user_id)

    return {f"/{service}/RevokeSession": session, f"/{service}/RevokeUserSessions": user}
