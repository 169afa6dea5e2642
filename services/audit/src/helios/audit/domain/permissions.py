"""Audit's permission catalog, declared in code and registered with authz at start (Z2)."""

from __future__ import annotations

from helios.proto.authz.v1 import authz_pb2

__all__ = ["AUDIT_PERMISSIONS", "PLATFORM_LIST"]

_ALL = (authz_pb2.SCOPE_OWN, authz_pb2.SCOPE_TEAM, authz_pb2.SCOPE_ANY)
_ANY = (authz_pb2.SCOPE_ANY,)

# key: (one-line description, dangerous by default, scopes a grant may carry). Events have an
# actor, so reading them can be limited to one's own or one's team's; checkpoints, exports and
# retention cover the whole org's log.
_DECLARED: dict[str, tuple[str, bool, tuple[authz_pb2.Scope.ValueType, ...]]] = {
    "audit.event.list": ("List audit events", False, _ALL),
    "audit.event.watch": ("Watch audit events as they are stored", False, _ALL),
    "audit.event.export": ("Export the audit events of a time range", False, _ANY),
    "audit.checkpoint.seal": ("Seal a signed checkpoint of the audit log now", False, _ANY),
    "audit.checkpoint.read": (
        "See signed audit checkpoints and their inclusion and consistency proofs",
        False,
        _ANY,
    ),
    "platform.audit.list": (
        "List and watch the audit events of every organization (platform root only)",
        False,
        _ANY,
    ),
    "platform.audit.setRetention": (
        "Set an organization's audit retention tier (platform root only)",
        False,
        _ANY,
    ),
}

AUDIT_PERMISSIONS: tuple[authz_pb2.PermissionDefinition, ...] = tuple(
    authz_pb2.PermissionDefinition(
        key=key, description=text, dangerous=dangerous, allowed_scopes=scopes
    )
    for key, (text, dangerous, scopes) in sorted(_DECLARED.items())
)
"""Every permission audit's RPCs require, with the flags its proto options declare, plus
PLATFORM_LIST, which ListEvents / WatchEvents check inside (the platform root sees all orgs)."""

PLATFORM_LIST = "platform.audit.list"
