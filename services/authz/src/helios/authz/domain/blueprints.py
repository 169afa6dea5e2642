"""Role blueprints Owner / Admin / Manager / Employee / Client, derived from the catalog (Z3)."""

from __future__ import annotations

import enum

from helios.authz_rules.dangerous import is_dangerous
from helios.authz_rules.permissions import (
    PLATFORM_MODULE,
    Catalog,
    Grant,
    PermissionSpec,
    Scope,
    key_matches,
    validate_tenant_grants,
)

__all__ = [
    "ADMIN_MODULES",
    "OWNER_ONLY_PATTERNS",
    "READ_VERBS",
    "TENANT_BLUEPRINTS",
    "Blueprint",
    "blueprint_grants",
]

ADMIN_MODULES: frozenset[str] = frozenset({"iam", "authz", "saas"})
"""Modules that administer the org itself (people, roles, the organization)."""

OWNER_ONLY_PATTERNS: tuple[str, ...] = ("saas.organization.delete", "*.ownership.transfer")
"""What only the Owner may do: delete the organization or hand it over."""

READ_VERBS: frozenset[str] = frozenset({"read", "list", "get", "view"})
"""Verbs that only look."""


class Blueprint(enum.Enum):
    """The roles seeded in every org; rules in blueprint_grants()."""

    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    EMPLOYEE = "employee"
    CLIENT = "client"
    PLATFORM_ROOT = "root"


TENANT_BLUEPRINTS: tuple[Blueprint, ...] = (
    Blueprint.OWNER,
    Blueprint.ADMIN,
    Blueprint.MANAGER,
    Blueprint.EMPLOYEE,
    Blueprint.CLIENT,
)
"""The blueprints every org is seeded with (the platform root is not one)."""


def _widest(spec: PermissionSpec, cap: Scope) -> Scope | None:
    """The widest scope the spec allows that is no wider than `cap`, or None."""
    fitting = [s for s in spec.allowed_scopes if cap.implies(s)]
    return max(fitting, key=lambda s: s.rank) if fitting else None


def _rule(blueprint: Blueprint, spec: PermissionSpec) -> Scope | None:
    key = spec.key
    if blueprint is Blueprint.PLATFORM_ROOT:
        return None
    admin = key.module in ADMIN_MODULES
    dangerous = is_dangerous(key, spec.dangerous, frozenset())
    if blueprint is Blueprint.OWNER:
        return _widest(spec, Scope.ANY)
    if blueprint is Blueprint.ADMIN:
        if any(key_matches(p, key) for p in OWNER_ONLY_PATTERNS):
            return None
        return _widest(spec, Scope.ANY)
    if blueprint is Blueprint.MANAGER:
        return None if admin else _widest(spec, Scope.TEAM)
    if blueprint is Blueprint.EMPLOYEE:
        return None if admin or dangerous else _widest(spec, Scope.OWN)
    if admin or dangerous or key.verb not in READ_VERBS:
        return None
    return _widest(spec, Scope.OWN)


def blueprint_grants(blueprint: Blueprint, catalog: Catalog) -> frozenset[Grant]:
    """The grants a blueprint holds over `catalog`; never a platform.* key. For each catalog
    permission (platform.* skipped), the grant carries the widest allowed scope within the cap:

    - Owner: every permission, cap ANY.
    - Admin: every permission except OWNER_ONLY_PATTERNS, cap ANY.
    - Manager: every permission outside ADMIN_MODULES (dangerous ones included), cap TEAM.
    - Employee: every permission outside ADMIN_MODULES that is not dangerous (spec flag or a D1
      default class), cap OWN.
    - Client: like Employee but only READ_VERBS, cap OWN.
    - Platform root: no tenant grant; it holds every platform.* key by being the root (Z6).

    A permission the spec allows only at wider scopes than the cap is not granted.
    """
    grants = set()
    for spec in catalog:
        if spec.key.module == PLATFORM_MODULE:
            continue
        scope = _rule(blueprint, spec)
        if scope is not None:
            grants.add(Grant(spec.key, scope))
    result = frozenset(grants)
    validate_tenant_grants(result, catalog)
    return result
