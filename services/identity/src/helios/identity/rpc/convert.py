"""Conversion between identity's domain objects and its protos."""

from __future__ import annotations

from helios.identity.domain.api_keys import ApiKey
from helios.identity.domain.auth_config import AuthConfig, OidcProvider
from helios.identity.domain.members import Membership
from helios.identity.domain.model import (
    Org,
    PendingSecondFactor,
    Session,
    SignInMethod,
    User,
)
from helios.proto.identity.v1 import identity_pb2

__all__ = [
    "METHOD_TO_PROTO",
    "api_key_to_proto",
    "auth_config_from_proto",
    "auth_config_to_proto",
    "member_to_proto",
    "org_to_proto",
    "second_factor_to_proto",
    "session_to_proto",
    "user_to_proto",
]

METHOD_TO_PROTO = {
    SignInMethod.TOTP: identity_pb2.SECOND_FACTOR_METHOD_TOTP,
    SignInMethod.BACKUP_CODE: identity_pb2.SECOND_FACTOR_METHOD_BACKUP_CODE,
    SignInMethod.EMAIL_OTP: identity_pb2.SECOND_FACTOR_METHOD_EMAIL_OTP,
    SignInMethod.PUSH: identity_pb2.SECOND_FACTOR_METHOD_PUSH,
}
"""Second-factor methods as the proto names them."""


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
        org_id=str(session.org_id or ""),
        impersonator_id=str(session.impersonator_id or ""),
        method=session.method,
    )
    message.created_at.FromDatetime(session.created_at)
    message.expires_at.FromDatetime(session.expires_at)
    if session.last_seen_at is not None:
        message.last_seen_at.FromDatetime(session.last_seen_at)
    return message


def second_factor_to_proto(pending: PendingSecondFactor) -> identity_pb2.SecondFactorChallenge:
    """A pending second factor with its token (shown once)."""
    message = identity_pb2.SecondFactorChallenge(
        challenge_token=pending.token,
        methods=[METHOD_TO_PROTO[method] for method in pending.methods],
    )
    message.expires_at.FromDatetime(pending.expires_at)
    return message


def org_to_proto(org: Org) -> identity_pb2.Org:
    """A tenant."""
    message = identity_pb2.Org(
        org_id=str(org.id),
        slug=org.slug,
        name=org.name,
        auth_policy=identity_pb2.OrgAuthPolicy(
            require_mfa=org.auth_policy.require_mfa,
            magic_link_enabled=org.auth_policy.magic_link_enabled,
        ),
    )
    message.created_at.FromDatetime(org.created_at)
    return message


def auth_config_to_proto(config: AuthConfig) -> identity_pb2.AuthConfig:
    """The provider configuration; client secrets are never returned (left empty)."""
    return identity_pb2.AuthConfig(
        magic_link_enabled=config.magic_link_enabled,
        mfa_required=config.mfa_required,
        remember_device_days=config.remember_device_days,
        session_idle_timeout_seconds=config.session_idle_timeout_seconds,
        oidc_providers=[
            identity_pb2.OidcProviderConfig(
                provider_id=p.provider_id, issuer=p.issuer, client_id=p.client_id, enabled=p.enabled
            )
            for p in config.oidc_providers
        ],
        version=config.version,
    )


def auth_config_from_proto(message: identity_pb2.AuthConfig) -> AuthConfig:
    """A proposed configuration, plaintext secrets included (validated by the service)."""
    return AuthConfig(
        magic_link_enabled=message.magic_link_enabled,
        mfa_required=message.mfa_required,
        remember_device_days=message.remember_device_days,
        session_idle_timeout_seconds=message.session_idle_timeout_seconds,
        oidc_providers=tuple(
            OidcProvider(
                provider_id=p.provider_id,
                issuer=p.issuer,
                client_id=p.client_id,
                client_secret=p.client_secret,
                enabled=p.enabled,
            )
            for p in message.oidc_providers
        ),
        version=message.version,
    )


def member_to_proto(membership: Membership, user: User) -> identity_pb2.OrgMember:
    """A member of an org with their public account view."""
    message = identity_pb2.OrgMember(
        org_id=str(membership.org_id), user=user_to_proto(user), user_type=membership.user_type
    )
    message.joined_at.FromDatetime(membership.joined_at)
    return message


def api_key_to_proto(key: ApiKey) -> identity_pb2.ApiKey:
    """An API key without its secret or hash."""
    message = identity_pb2.ApiKey(
        api_key_id=str(key.id),
        org_id=str(key.org_id),
        name=key.name,
        permissions=list(key.permissions),
        created_by=str(key.created_by),
    )
    message.created_at.FromDatetime(key.created_at)
    message.expires_at.FromDatetime(key.expires_at)
    if key.last_used_at is not None:
        message.last_used_at.FromDatetime(key.last_used_at)
    if key.revoked_at is not None:
        message.revoked_at.FromDatetime(key.revoked_at)
    return message
