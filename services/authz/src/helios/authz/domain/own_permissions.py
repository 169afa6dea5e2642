"""Authz's own permission catalog, declared in code and registered at start (Z2)."""

from __future__ import annotations

from helios.authz_rules.permissions import PermissionSpec, Scope, parse_key

__all__ = ["AUTHZ_PERMISSIONS"]

_ANY = frozenset({Scope.ANY})

# key: (one-line description, dangerous by default)
_DECLARED: dict[str, tuple[str, bool]] = {
    "authz.decision.check": ("Ask whether an action is allowed", False),
    "authz.decision.plan": ("Get the list filter for a resource type", False),
    "authz.decision.explain": (
        "See why an action was allowed or denied, now or in the past",
        False,
    ),
    "authz.role.create": ("Create custom roles", False),
    "authz.role.read": ("See a role and its permissions", False),
    "authz.role.list": ("List the organization's roles", False),
    "authz.role.update": ("Rename roles and change their permissions", True),
    "authz.role.delete": ("Delete roles and their assignments", True),
    "authz.roleAssignment.create": ("Give roles to people", True),
    "authz.roleAssignment.delete": ("Take roles away from people", True),
    "authz.roleAssignment.list": ("See who holds which role", False),
    "authz.team.create": ("Create teams", False),
    "authz.team.read": ("See a team", False),
    "authz.team.list": ("List the organization's teams", False),
    "authz.team.update": ("Rename teams", False),
    "authz.team.delete": ("Delete teams", True),
    "authz.teamMember.create": ("Add people to teams", False),
    "authz.teamMember.delete": ("Remove people from teams", True),
    "authz.teamMember.list": ("See team members", False),
    "authz.userType.create": ("Create user types", False),
    "authz.userType.read": ("See a user type", False),
    "authz.userType.list": ("List user types", False),
    "authz.userType.update": ("Change user types and their default role", True),
    "authz.userType.delete": ("Delete user types", True),
    "authz.userType.assign": ("Set a person's user type (and so its default role)", True),
    "authz.permission.register": ("Register a service's permissions (services only)", False),
    "authz.permission.list": ("See the permission catalog", False),
    "authz.dangerousAction.update": ("Mark more actions dangerous for the organization", True),
    "authz.dangerousAction.read": ("See which actions are dangerous", False),
}

AUTHZ_PERMISSIONS: tuple[PermissionSpec, ...] = tuple(
    PermissionSpec(parse_key(key), text, dangerous, _ANY)
    for key, (text, dangerous) in sorted(_DECLARED.items())
)
"""Every permission authz's RPCs require, with the flags its proto options declare."""
