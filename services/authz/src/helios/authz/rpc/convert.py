"""Conversion between authz's domain and its protos."""

from __future__ import annotations

from collections.abc import Iterable

from helios.authz.domain.blueprints import Blueprint
from helios.authz.domain.model import (
    AssignmentRecord,
    GrantSource,
    HeldGrant,
    RegisteredPermission,
    RoleRecord,
    TeamMemberRecord,
    TeamRecord,
    UserTypeRecord,
)
from helios.authz.service.caches import MINIMIZE_LATENCY, Consistency, Freshness
from helios.authz.service.decisions import CheckResult, DenyReason, PlanResult
from helios.authz_rules.evaluator import Resource
from helios.authz_rules.explain import Step, StepKind
from helios.authz_rules.permissions import (
    PLATFORM_MODULE,
    Grant,
    PermissionSpec,
    Scope,
    parse_key,
)
from helios.authz_rules.plan import And, Eq, Filter, In, Plan, PlanKind
from helios.kernel.errors import InvalidArgumentError
from helios.proto.authz.v1 import authz_pb2

__all__ = [
    "assignment_to_proto",
    "check_to_proto",
    "consistency_from_proto",
    "filter_to_proto",
    "grants_from_proto",
    "held_to_proto",
    "member_to_proto",
    "permission_to_proto",
    "plan_to_proto",
    "resource_from_proto",
    "role_to_proto",
    "scoped_to_proto",
    "spec_from_proto",
    "step_to_proto",
    "team_to_proto",
    "user_type_to_proto",
]

_SCOPES = {
    authz_pb2.SCOPE_OWN: Scope.OWN,
    authz_pb2.SCOPE_TEAM: Scope.TEAM,
    authz_pb2.SCOPE_ANY: Scope.ANY,
}
_SCOPE_PROTOS = {scope: value for value, scope in _SCOPES.items()}
_DENY = {
    DenyReason.NONE: authz_pb2.DENY_REASON_UNSPECIFIED,
    DenyReason.UNKNOWN_PERMISSION: authz_pb2.DENY_REASON_UNKNOWN_PERMISSION,
    DenyReason.NO_GRANT: authz_pb2.DENY_REASON_NO_GRANT,
    DenyReason.SCOPE_MISMATCH: authz_pb2.DENY_REASON_SCOPE_MISMATCH,
    DenyReason.OTHER_ORG: authz_pb2.DENY_REASON_OTHER_ORG,
    DenyReason.AI_NARROWING: authz_pb2.DENY_REASON_AI_NARROWING,
    DenyReason.PLATFORM_RESERVED: authz_pb2.DENY_REASON_PLATFORM_RESERVED,
    DenyReason.AI_FORBIDDEN: authz_pb2.DENY_REASON_AI_FORBIDDEN,
}
_PLAN_KINDS = {
    PlanKind.ALWAYS_ALLOWED: authz_pb2.PLAN_KIND_ALWAYS_ALLOWED,
    PlanKind.ALWAYS_DENIED: authz_pb2.PLAN_KIND_ALWAYS_DENIED,
    PlanKind.CONDITIONAL: authz_pb2.PLAN_KIND_CONDITIONAL,
}
_BLUEPRINTS = {
    None: authz_pb2.ROLE_BLUEPRINT_CUSTOM,
    Blueprint.OWNER: authz_pb2.ROLE_BLUEPRINT_OWNER,
    Blueprint.ADMIN: authz_pb2.ROLE_BLUEPRINT_ADMIN,
    Blueprint.MANAGER: authz_pb2.ROLE_BLUEPRINT_MANAGER,
    Blueprint.EMPLOYEE: authz_pb2.ROLE_BLUEPRINT_EMPLOYEE,
    Blueprint.CLIENT: authz_pb2.ROLE_BLUEPRINT_CLIENT,
    Blueprint.PLATFORM_ROOT: authz_pb2.ROLE_BLUEPRINT_PLATFORM_ROOT,
}
_SOURCES = {
    GrantSource.ROLE_ASSIGNMENT: authz_pb2.GRANT_SOURCE_ROLE_ASSIGNMENT,
    GrantSource.USER_TYPE_DEFAULT: authz_pb2.GRANT_SOURCE_USER_TYPE_DEFAULT,
}
_STEPS = {
    StepKind.CATALOG: authz_pb2.EXPLAIN_STEP_KIND_CATALOG,
    StepKind.TENANCY: authz_pb2.EXPLAIN_STEP_KIND_TENANCY,
    StepKind.PLATFORM_RESERVED: authz_pb2.EXPLAIN_STEP_KIND_PLATFORM_RESERVED,
    StepKind.AI_RESTRICTION: authz_pb2.EXPLAIN_STEP_KIND_AI_RESTRICTION,
    StepKind.GRANT: authz_pb2.EXPLAIN_STEP_KIND_GRANT,
    StepKind.SCOPE: authz_pb2.EXPLAIN_STEP_KIND_SCOPE,
    StepKind.DANGEROUS: authz_pb2.EXPLAIN_STEP_KIND_DANGEROUS,
}
_FIELDS = {
    "org_id": authz_pb2.FILTER_FIELD_ORG_ID,
    "owner_id": authz_pb2.FILTER_FIELD_OWNER_ID,
    "team_id": authz_pb2.FILTER_FIELD_TEAM_ID,
}


def _scope(value: authz_pb2.Scope.ValueType, field: str) -> Scope:
    scope = _SCOPES.get(value)
    if scope is None:
        raise InvalidArgumentError(f"{field}: scope must be own, team or any", field=field)
    return scope


def spec_from_proto(definition: authz_pb2.PermissionDefinition) -> PermissionSpec:
    """A declared permission; empty allowed_scopes means SCOPE_ANY only."""
    scopes = frozenset(_scope(s, "allowed_scopes") for s in definition.allowed_scopes)
    return PermissionSpec(
        parse_key(definition.key),
        definition.description,
        definition.dangerous,
        scopes or frozenset({Scope.ANY}),
    )


def grants_from_proto(permissions: Iterable[authz_pb2.ScopedPermission]) -> list[Grant]:
    """The grants a role request lists."""
    return [Grant(parse_key(p.permission), _scope(p.scope, "permissions")) for p in permissions]


def resource_from_proto(resource: authz_pb2.Resource) -> Resource:
    """The resource of a Check; empty owner or team means none."""
    return Resource(
        type=resource.type,
        id=resource.id,
        org_id=resource.org_id,
        owner_id=resource.owner_id or None,
        team_id=resource.team_id or None,
    )


def scoped_to_proto(grant: Grant) -> authz_pb2.ScopedPermission:
    return authz_pb2.ScopedPermission(permission=str(grant.key), scope=_SCOPE_PROTOS[grant.scope])


def permission_to_proto(entry: RegisteredPermission, dangerous: bool) -> authz_pb2.Permission:
    """A catalog entry with the org's effective dangerous flag."""
    spec = entry.spec
    return authz_pb2.Permission(
        key=str(spec.key),
        description=spec.description,
        allowed_scopes=[
            _SCOPE_PROTOS[s] for s in sorted(spec.allowed_scopes, key=lambda s: s.rank)
        ],
        default_dangerous=entry.spec.dangerous,
        dangerous=dangerous,
        service=entry.service,
        platform_only=spec.key.module == PLATFORM_MODULE,
    )


def role_to_proto(role: RoleRecord) -> authz_pb2.Role:
    """A role with its grants and the blueprint it was seeded from."""
    message = authz_pb2.Role(
        role_id=str(role.id),
        org_id=role.org_id,
        name=role.name,
        description=role.description,
        blueprint=_BLUEPRINTS[role.blueprint],
        permissions=[scoped_to_proto(g) for g in sorted(role.grants)],
        revision=role.revision,
    )
    message.create_time.FromDatetime(role.created_at)
    message.update_time.FromDatetime(role.updated_at or role.created_at)
    return message


def assignment_to_proto(assignment: AssignmentRecord) -> authz_pb2.RoleAssignment:
    """A live role assignment."""
    message = authz_pb2.RoleAssignment(
        assignment_id=str(assignment.id),
        org_id=assignment.org_id,
        role_id=str(assignment.role_id),
        user_id=assignment.user_id,
        granted_by=assignment.granted_by,
        revision=assignment.revision,
    )
    message.create_time.FromDatetime(assignment.created_at)
    return message


def check_to_proto(result: CheckResult) -> authz_pb2.Decision:
    """The decision as served."""
    message = authz_pb2.Decision(
        allowed=result.decision.allowed,
        decision_id=result.decision_id,
        deny_reason=_DENY[result.deny_reason],
        dangerous=result.dangerous,
        revision=result.revision,
    )
    if result.held is not None:
        message.grant.CopyFrom(held_to_proto(result.held))
    return message


def held_to_proto(held: HeldGrant) -> authz_pb2.Grant:
    """A held grant with the role that carries it and how the user holds that role."""
    return authz_pb2.Grant(
        role_id=str(held.role_id),
        role_name=held.role_name,
        assignment_id=str(held.assignment_id) if held.assignment_id else "",
        permission=scoped_to_proto(held.grant),
        source=_SOURCES[held.source],
        user_type_id=str(held.user_type_id) if held.user_type_id else "",
    )


def consistency_from_proto(message: authz_pb2.Consistency) -> Consistency:
    """The read's freshness; absent means minimize_latency."""
    which = message.WhichOneof("requirement")
    if which == "fully_consistent":
        return Consistency(Freshness.FULLY_CONSISTENT)
    if which == "at_least_as_fresh":
        if message.at_least_as_fresh < 0:
            raise InvalidArgumentError(
                "consistency.at_least_as_fresh must not be negative", field="consistency"
            )
        return Consistency(Freshness.AT_LEAST_AS_FRESH, message.at_least_as_fresh)
    return MINIMIZE_LATENCY


def filter_to_proto(node: Filter) -> authz_pb2.FilterNode:
    """The filter tree in the proto's form (Eq is a one-value leaf)."""
    if isinstance(node, Eq):
        return authz_pb2.FilterNode(
            leaf=authz_pb2.FilterLeaf(field=_FIELDS[node.field], values=[node.value])
        )
    if isinstance(node, In):
        return authz_pb2.FilterNode(
            leaf=authz_pb2.FilterLeaf(field=_FIELDS[node.field], values=list(node.values))
        )
    children = authz_pb2.FilterNodeList(nodes=[filter_to_proto(c) for c in node.children])
    if isinstance(node, And):
        return authz_pb2.FilterNode(all_of=children)
    return authz_pb2.FilterNode(any_of=children)


def plan_to_proto(result: PlanResult) -> authz_pb2.PlanListResponse:
    """The plan as served; the filter is set only for a conditional plan."""
    plan: Plan = result.plan
    response = authz_pb2.PlanListResponse(
        kind=_PLAN_KINDS[plan.kind],
        decision_id=result.decision_id,
        dangerous=result.dangerous,
        revision=result.revision,
    )
    if plan.kind is PlanKind.CONDITIONAL and plan.filter is not None:
        response.filter.CopyFrom(filter_to_proto(plan.filter))
    return response


def team_to_proto(team: TeamRecord) -> authz_pb2.Team:
    """A team with its member count."""
    message = authz_pb2.Team(
        team_id=str(team.id),
        org_id=team.org_id,
        name=team.name,
        description=team.description,
        member_count=team.member_count,
        revision=team.revision,
    )
    message.create_time.FromDatetime(team.created_at)
    message.update_time.FromDatetime(team.updated_at)
    return message


def member_to_proto(member: TeamMemberRecord) -> authz_pb2.TeamMember:
    """A team membership."""
    message = authz_pb2.TeamMember(
        team_id=str(member.team_id), user_id=member.user_id, added_by=member.added_by
    )
    message.create_time.FromDatetime(member.created_at)
    return message


def user_type_to_proto(user_type: UserTypeRecord) -> authz_pb2.UserType:
    """A user type with its default role."""
    message = authz_pb2.UserType(
        user_type_id=str(user_type.id),
        org_id=user_type.org_id,
        name=user_type.name,
        description=user_type.description,
        default_role_id=str(user_type.default_role_id or ""),
        revision=user_type.revision,
    )
    message.create_time.FromDatetime(user_type.created_at)
    message.update_time.FromDatetime(user_type.updated_at)
    return message


def step_to_proto(step: Step, held: Iterable[HeldGrant]) -> authz_pb2.ExplainStep:
    """An explanation step; its grant is shown with the role that carried it then."""
    message = authz_pb2.ExplainStep(kind=_STEPS[step.kind], passed=step.passed, detail=step.detail)
    if step.grant is not None:
        found = next((h for h in held if h.grant == step.grant), None)
        if found is not None:
            message.grant.CopyFrom(held_to_proto(found))
        else:
            message.grant.permission.CopyFrom(scoped_to_proto(step.grant))
    return message
