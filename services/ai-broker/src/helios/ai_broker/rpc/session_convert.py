"""AI sessions from the domain to the wire."""

from __future__ import annotations

import datetime as dt

from helios.ai_broker.domain.model import AiSession
from helios.proto.ai_broker.v1 import ai_broker_pb2

__all__ = ["ai_session_to_proto"]


def _state(session: AiSession, now: dt.datetime) -> ai_broker_pb2.AiSessionState.ValueType:
    if session.revoked_at is not None:
        return ai_broker_pb2.AI_SESSION_STATE_REVOKED
    if session.is_active(now):
        return ai_broker_pb2.AI_SESSION_STATE_ACTIVE
    return ai_broker_pb2.AI_SESSION_STATE_EXPIRED


def ai_session_to_proto(session: AiSession, now: dt.datetime) -> ai_broker_pb2.AiSession:
    """The session as served (never its token or hash), its state as of `now`."""
    message = ai_broker_pb2.AiSession(
        ai_session_id=str(session.id),
        org_id=session.org_id,
        user_id=session.user_id,
        purpose=session.purpose,
        permissions=list(session.permissions),
        state=_state(session, now),
        token_prefix=session.token_prefix,
        rate_limit_per_minute=session.rate_limit_per_minute,
        revoked_by=session.revoked_by,
    )
    message.create_time.FromDatetime(session.created_at)
    message.expire_time.FromDatetime(session.expires_at)
    if session.revoked_at is not None:
        message.revoke_time.FromDatetime(session.revoked_at)
    if session.last_used_at is not None:
        message.last_use_time.FromDatetime(session.last_used_at)
    return message
