"""Authz list plans applied to a SELECT: list handlers return only the rows Check would allow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, and_, false, or_, true

from helios.proto.authz.v1 import authz_pb2

__all__ = ["PlanColumns", "apply_plan", "plan_filter"]

Ts = TypeVarTuple("Ts")


@dataclass(frozen=True, slots=True)
class PlanColumns:
    """The columns of the listed table that a plan's leaves test. `team_id` is None when the
    table has no team column: a TEAM leaf then matches no row (a team grant still reaches the
    subject's own rows through its OWNER leaf). Values are bound with each column's type."""

    org_id: ColumnElement[Any]
    owner_id: ColumnElement[Any]
    team_id: ColumnElement[Any] | None = None


def _column(
    field: authz_pb2.FilterField.ValueType, columns: PlanColumns
) -> ColumnElement[Any] | None:
    """The column a leaf tests, None for TEAM on a table without one; raises ValueError on an
    unset or unknown field."""
    if field == authz_pb2.FILTER_FIELD_ORG_ID:
        return columns.org_id
    if field == authz_pb2.FILTER_FIELD_OWNER_ID:
        return columns.owner_id
    if field == authz_pb2.FILTER_FIELD_TEAM_ID:
        return columns.team_id
    raise ValueError(f"filter leaf field {field} is unset or unknown; refusing to list")


def _where(node: authz_pb2.FilterNode, columns: PlanColumns) -> ColumnElement[bool]:
    """The SQL of one filter node as the proto defines it; raises ValueError if malformed."""
    which = node.WhichOneof("node")
    if which == "leaf":
        column = _column(node.leaf.field, columns)
        values = list(node.leaf.values)
        return column.in_(values) if column is not None and values else false()
    if which == "all_of":
        children = [_where(child, columns) for child in node.all_of.nodes]
        return and_(*children) if children else true()
    if which == "any_of":
        children = [_where(child, columns) for child in node.any_of.nodes]
        return or_(*children) if children else false()
    raise ValueError("filter node has no all_of, any_of or leaf; refusing to list")


def plan_filter(plan: authz_pb2.PlanListResponse, columns: PlanColumns) -> ColumnElement[bool]:
    """The WHERE clause keeping exactly the rows `plan` allows: true for ALWAYS_ALLOWED, false
    for ALWAYS_DENIED, the filter tree (bound parameters only) for CONDITIONAL. Raises ValueError
    (fail closed) on an unspecified or unknown kind, a CONDITIONAL plan without a filter, or a
    malformed filter node or leaf."""
    if plan.kind == authz_pb2.PLAN_KIND_ALWAYS_ALLOWED:
        return true()
    if plan.kind == authz_pb2.PLAN_KIND_ALWAYS_DENIED:
        return false()
    if plan.kind != authz_pb2.PLAN_KIND_CONDITIONAL:
        raise ValueError(f"list plan kind {plan.kind} is unspecified or unknown; refusing to list")
    if not plan.HasField("filter"):
        raise ValueError("conditional list plan has no filter; refusing to list")
    return _where(plan.filter, columns)


def apply_plan(
    statement: Select[*Ts], plan: authz_pb2.PlanListResponse, columns: PlanColumns
) -> Select[*Ts]:
    """`statement` restricted to the rows `plan` allows: unchanged for ALWAYS_ALLOWED, `WHERE
    false` for ALWAYS_DENIED, the plan's filter for CONDITIONAL. Validates the whole plan before
    returning; raises ValueError like plan_filter() and then never returns a statement."""
    clause = plan_filter(plan, columns)
    if plan.kind == authz_pb2.PLAN_KIND_ALWAYS_ALLOWED:
        return statement
    return statement.where(clause)
