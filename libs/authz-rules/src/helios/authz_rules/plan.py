"""List plans: the filter that selects exactly the rows decide() allows, for SQL to apply."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from helios.authz_rules.evaluator import (
    Resource,
    Subject,
    blanket_refusal,
    usable_grants,
)
from helios.authz_rules.permissions import (
    PLATFORM_MODULE,
    Catalog,
    PermissionKey,
    Scope,
    parse_key,
)

__all__ = [
    "And",
    "Eq",
    "Field",
    "Filter",
    "In",
    "Or",
    "Plan",
    "PlanKind",
    "matches",
    "plan_list",
]

Field: TypeAlias = Literal["org_id", "owner_id", "team_id"]
_FIELDS: frozenset[str] = frozenset(get_args(Field))


def _check_field(field: str) -> None:
    if field not in _FIELDS:
        raise ValueError(f"filter field {field!r} must be one of {sorted(_FIELDS)}")


@dataclass(frozen=True, slots=True)
class Eq:
    """`field = value`; a row whose field is NULL never matches (as in SQL)."""

    field: Field
    value: str

    def __post_init__(self) -> None:
        _check_field(self.field)


@dataclass(frozen=True, slots=True)
class In:
    """`field IN values`; empty `values` matches nothing, a NULL field never matches."""

    field: Field
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_field(self.field)


@dataclass(frozen=True, slots=True)
class And:
    """All children match (an empty And matches everything)."""

    children: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Some child matches (an empty Or matches nothing)."""

    children: tuple[Filter, ...]


Filter: TypeAlias = Eq | In | And | Or


class PlanKind(enum.Enum):
    """Whether the caller may skip filtering, return nothing, or must apply `Plan.filter`."""

    ALWAYS_ALLOWED = "always_allowed"
    ALWAYS_DENIED = "always_denied"
    CONDITIONAL = "conditional"


@dataclass(frozen=True, slots=True)
class Plan:
    """A list plan for one resource type; `filter` is set exactly when kind is CONDITIONAL."""

    kind: PlanKind
    resource_type: str
    filter: Filter | None
    reason: str


def _scope_filter(scope: Scope, subject: Subject) -> Filter:
    """The rows of the subject's org a grant of `scope` reaches, as scope_matches() defines it."""
    in_org = Eq("org_id", subject.org_id)
    if scope is Scope.ANY:
        return And((in_org,))
    own = Eq("owner_id", subject.actor_id)
    if scope is Scope.TEAM:
        teams = In("team_id", tuple(sorted(subject.team_ids)))
        return And((in_org, Or((own, teams)) if subject.team_ids else own))
    return And((in_org, own))


def plan_list(
    subject: Subject, permission_key: str | PermissionKey, resource_type: str, catalog: Catalog
) -> Plan:
    """The plan whose filter keeps exactly the rows decide() allows `subject` for this key.
    Tenant plans always filter on the subject's org; only the platform root's platform.* plans
    are ALWAYS_ALLOWED. Raises InvalidArgumentError on a malformed key."""
    key = parse_key(permission_key)
    spec = catalog.get(key)
    if spec is None:
        return Plan(PlanKind.ALWAYS_DENIED, resource_type, None, f"unknown permission {key}")
    refusal = blanket_refusal(subject, key)
    if refusal is not None:
        return Plan(PlanKind.ALWAYS_DENIED, resource_type, None, refusal)
    if key.module == PLATFORM_MODULE:
        return Plan(PlanKind.ALWAYS_ALLOWED, resource_type, None, f"platform root holds {key}")
    grants = usable_grants(subject, key, spec)
    if not grants:
        return Plan(PlanKind.ALWAYS_DENIED, resource_type, None, f"no role grants {key}")
    broadest = grants[0]
    return Plan(
        PlanKind.CONDITIONAL,
        resource_type,
        _scope_filter(broadest.scope, subject),
        f"{broadest} filters {resource_type}",
    )


def _value(row: Resource, field: Field) -> str | None:
    if field == "org_id":
        return row.org_id
    if field == "owner_id":
        return row.owner_id
    return row.team_id


def _eval(node: Filter, row: Resource) -> bool:
    if isinstance(node, Eq):
        value = _value(row, node.field)
        return value is not None and value == node.value
    if isinstance(node, In):
        value = _value(row, node.field)
        return value is not None and value in node.values
    if isinstance(node, And):
        return all(_eval(child, row) for child in node.children)
    return any(_eval(child, row) for child in node.children)


def matches(plan: Plan, row: Resource) -> bool:
    """Whether `row` passes `plan`: the pure twin of the SQL the kernel's helper builds."""
    if plan.kind is PlanKind.ALWAYS_ALLOWED:
        return True
    if plan.kind is PlanKind.ALWAYS_DENIED or plan.filter is None:
        return False
    return _eval(plan.filter, row)
