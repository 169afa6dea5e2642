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
    "identity.mfa.read": ("See one's own second factors", False, _OWN),
    "identity.mfa.stepUp": (
        "Prove a second factor again for one sensitive step (e.g. an AI's dangerous action)",
        False,
        _OWN,
    ),
    "identity.device.list": ("List one's own remembered devices", False, _OWN),
    "identity.device.revoke": ("Forget one of one's own remembered devices", False, _OWN),
    "identity.loginHistory.list": (
        "See sign-in history (one's own, or any user's of the organization)",
        False,
        _OWN_OR_ANY,
    ),
    "identity.apiKey.list": ("List API keys", False, _OWN_OR_ANY),
    "iam.member.add": ("Add people to the organization", False, _ANY),
    "iam.member.remove": ("Remove people from the organization", True, _ANY),
    "iam.member.list": ("List the organization's members", False, _ALL),
    "iam.org.updateAuthPolicy": (
        "Require a second factor or allow magic links for the organization",
        True,
        _ANY,
    ),
    "iam.user.unlock": ("Lift a person's sign-in lockout", False, _ANY),
    "platform.authConfig.read": ("See the deployment's sign-in configuration", False, _ANY),
    "platform.authConfig.update": (
        "Change the deployment's sign-in configuration (platform root only)",
        True,
        _ANY,
    ),
}

IDENTITY_PERMISSIONS: tuple[authz_pb2.PermissionDefinition, ...] = tuple(
    authz_pb2.PermissionDefinition(
        key=key, description=text, dangerous=dangerous, allowed_scopes=scopes
    )
    for key, (text, dangerous, scopes) in sorted(_DECLARED.items())
)
"""Every permission identity's RPCs require, with the flags its proto options declare."""
