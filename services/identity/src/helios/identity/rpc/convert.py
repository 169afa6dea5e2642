"""Conversion between identity's domain objects and its protos."""

from __future__ import annotations

from helios.identity.domain.model import Org, Session, User
from helios.proto.identity.v1 import identity_pb2

__all__ = ["org_to_proto", "session_to_proto", "user_to_proto"]


def user_to_proto(user: User) -> identity_pb2.User:
    """The public view of a user (never the password hash)."""
    message = identity_pb2.User(
        user_id=str(user.id),
        email=user.email,
        display_name=user.display_name,
        email_verified=user.email_verified_at is not None,
    )
    message.created_at.FromDatetime(user.created_at)
    return message


def session_to_proto(session: Session) -> identity_pb2.Session:
    """A session without its token hash."""
    message = identity_pb2.Session(
        session_id=str(session.id),
        user_id=str(session.user_id),
        ip=session.ip,
        user_agent=session.user_agent,
    )
    message.created_at.FromDatetime(session.created_at)
    message.expires_at.FromDatetime(session.expires_at)
    return message


def org_to_proto(org: Org) -> identity_pb2.Org:
    """A tenant."""
    message = identity_pb2.Org(org_id=str(org.id), slug=org.slug, name=org.name)
    message.created_at.FromDatetime(org.created_at)
    return message
