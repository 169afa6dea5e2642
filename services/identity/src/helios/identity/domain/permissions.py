"""Identity's permission catalog, declared in code and registered with authz at start (Z2)."""

from __future__ import annotations

from helios.proto.authz.v1 import authz_pb2

__all__ = ["IDENTITY_PERMISSIONS"]

_OWN = (authz_pb2.SCOPE_OWN,)
_OWN_OR_ANY = (authz_pb2.SCOPE_OWN, authz_pb2.SCOPE_ANY)
_ALL = (authz_pb2.SCOPE_OWN, authz_pb2.SCOPE_TEAM, authz_pb2.SCOPE_ANY)
_ANY = (authz_pb2.SCOPE_ANY,)

# key: (one-line description, dangerous by default, scopes a grant may carry). One's own account
# and sessions are `own`; acting on other people of the org is an admin's `any`.
_DECLARED: dict[str, tuple[str, bool, tuple[authz_pb2.Scope.ValueType, ...]]] = {
    "identity.session.signOut": ("Sign out of one's own session", False, _OWN),
    "identity.password.change": ("Change one's own password", False, _OWN),
    "identity.user.read": ("See user accounts", False, _ALL),
    "identity.session.list": (
        "List sign-in sessions (one's own, or any user's of the organization)",
        False,
        _OWN_OR_ANY,
    ),
    "identity.session.revoke": (
        "Revoke a sign-in session (one's own, or any user's of the organization)",
        False,
        _OWN_OR_ANY,
    ),
    "identity.mfa.enroll": ("Set up one's own second factor and backup codes", False, _OWN),
    "identity.apiKey.create": ("Create API keys for machine callers", False, _OWN_OR_ANY),
    "identity.apiKey.delete": ("Revoke API keys", True, _OWN_OR_ANY),
    "iam.user.revokeSessions": ("Sign a person out of every session at once", True, _ANY),
    "iam.user.impersonate": (
        "Act as another person of the organization, time-limited and audited",
        True,
        _ANY,
    ),
    "platform.org.create": ("Create organizations (platform root only)", False, _ANY),
}

IDENTITY_PERMISSIONS: tuple[authz_pb2.PermissionDefinition, ...] = tuple(
    authz_pb2.PermissionDefinition(
        key=key, description=text, dangerous=dangerous, allowed_scopes=scopes
    )
    for key, (text, dangerous, scopes) in sorted(_DECLARED.items())
)
"""Every permission identity's RPCs require, with the flags its proto options declare."""
