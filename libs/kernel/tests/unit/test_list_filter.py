"""apply_plan(): each authz list plan kind as PostgreSQL SQL, and the fail-closed refusals (Z5)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, String, column, select, table
from sqlalchemy.dialects.postgresql import psycopg

from helios.kernel.list_filter import PlanColumns, apply_plan, plan_filter
from helios.proto.authz.v1 import authz_pb2 as az

pytestmark = pytest.mark.unit

DOCS = table(
    "docs",
    column("id", String),
    column("org_id", String),
    column("owner_id", String),
    column("team_id", String),
)
COLUMNS = PlanColumns(org_id=DOCS.c.org_id, owner_id=DOCS.c.owner_id, team_id=DOCS.c.team_id)
NO_TEAM = PlanColumns(org_id=DOCS.c.org_id, owner_id=DOCS.c.owner_id)
BASE = "SELECT docs.id \nFROM docs"
DIALECT = psycopg.dialect()  # type: ignore[no-untyped-call]


def _sql(statement: Select[Any]) -> tuple[str, dict[str, Any]]:
    """The statement as psycopg sends it (IN lists expanded, typed binds) and its parameters."""
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


def _leaf(field: az.FilterField.ValueType, *values: str) -> az.FilterNode:
    return az.FilterNode(leaf=az.FilterLeaf(field=field, values=list(values)))


def _all(*nodes: az.FilterNode) -> az.FilterNode:
    return az.FilterNode(all_of=az.FilterNodeList(nodes=list(nodes)))


def _any(*nodes: az.FilterNode) -> az.FilterNode:
    return az.FilterNode(any_of=az.FilterNodeList(nodes=list(nodes)))


def _conditional(node: az.FilterNode) -> az.PlanListResponse:
    return az.PlanListResponse(kind=az.PLAN_KIND_CONDITIONAL, filter=node)


def _listed(
    plan: az.PlanListResponse, columns: PlanColumns = COLUMNS
) -> tuple[str, dict[str, Any]]:
    return _sql(apply_plan(select(DOCS.c.id), plan, columns))


def test_z5_always_denied_plan_selects_nothing() -> None:
    plan = az.PlanListResponse(kind=az.PLAN_KIND_ALWAYS_DENIED)
    assert _listed(plan) == (f"{BASE} \nWHERE false", {})


def test_z5_always_allowed_plan_leaves_the_statement_unchanged() -> None:
    statement = select(DOCS.c.id).where(DOCS.c.org_id == "org-a")
    plan = az.PlanListResponse(kind=az.PLAN_KIND_ALWAYS_ALLOWED)
    assert apply_plan(statement, plan, COLUMNS) is statement
    assert str(plan_filter(plan, COLUMNS).compile(dialect=DIALECT)) == "true"


def test_z5_conditional_plan_becomes_parameterised_in_lists() -> None:
    plan = _conditional(
        _all(
            _leaf(az.FILTER_FIELD_ORG_ID, "org-a"),
            _any(_leaf(az.FILTER_FIELD_OWNER_ID, "u1"), _leaf(az.FILTER_FIELD_TEAM_ID, "t1", "t2")),
        )
    )
    sql, params = _listed(plan)
    assert sql == (
        f"{BASE} \nWHERE docs.org_id IN (%(org_id_1_1)s::VARCHAR)"
        " AND (docs.owner_id IN (%(owner_id_1_1)s::VARCHAR)"
        " OR docs.team_id IN (%(team_id_1_1)s::VARCHAR, %(team_id_1_2)s::VARCHAR))"
    )
    assert params == {
        "org_id_1_1": "org-a",
        "owner_id_1_1": "u1",
        "team_id_1_1": "t1",
        "team_id_1_2": "t2",
    }


def test_z5_values_are_bound_never_spliced_into_the_sql() -> None:
    hostile = "x') OR 1=1 --"
    sql, params = _listed(_conditional(_leaf(az.FILTER_FIELD_OWNER_ID, hostile)))
    assert hostile not in sql
    assert list(params.values()) == [hostile]


def test_z5_conditional_plan_keeps_the_statements_own_where() -> None:
    statement = select(DOCS.c.id).where(DOCS.c.id == "d1")
    sql, _ = _sql(apply_plan(statement, _conditional(_leaf(az.FILTER_FIELD_ORG_ID, "o")), COLUMNS))
    assert sql.endswith(
        "WHERE docs.id = %(id_1)s::VARCHAR AND docs.org_id IN (%(org_id_1_1)s::VARCHAR)"
    )


@pytest.mark.parametrize(
    ("node", "where"),
    [
        (_leaf(az.FILTER_FIELD_OWNER_ID), "false"),
        (_all(), "true"),
        (_any(), "false"),
        (_all(_leaf(az.FILTER_FIELD_ORG_ID, "o"), _any()), "false"),
        (_any(_leaf(az.FILTER_FIELD_ORG_ID), _all()), "true"),
    ],
    ids=["empty-leaf", "empty-all-of", "empty-any-of", "and-false", "or-true"],
)
def test_z5_empty_nodes_follow_the_proto(node: az.FilterNode, where: str) -> None:
    sql, params = _listed(_conditional(node))
    assert sql == f"{BASE} \nWHERE {where}"
    assert params == {}


def test_z5_team_leaf_matches_nothing_on_a_table_without_team_column() -> None:
    own_or_team = _any(_leaf(az.FILTER_FIELD_OWNER_ID, "u1"), _leaf(az.FILTER_FIELD_TEAM_ID, "t1"))
    sql, params = _listed(_conditional(own_or_team), NO_TEAM)
    assert sql == f"{BASE} \nWHERE docs.owner_id IN (%(owner_id_1_1)s::VARCHAR)"
    assert params == {"owner_id_1_1": "u1"}
    assert _listed(_conditional(_leaf(az.FILTER_FIELD_TEAM_ID, "t1")), NO_TEAM)[0].endswith(
        "WHERE false"
    )


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (az.PlanListResponse(), "kind 0 is unspecified"),
        (az.PlanListResponse(kind=99), "kind 99 is unspecified or unknown"),  # type: ignore[arg-type]
        (az.PlanListResponse(kind=az.PLAN_KIND_CONDITIONAL), "conditional list plan has no filter"),
        (_conditional(az.FilterNode()), "no all_of, any_of or leaf"),
        (_conditional(_all(_any(az.FilterNode()))), "no all_of, any_of or leaf"),
        (_conditional(_leaf(az.FILTER_FIELD_UNSPECIFIED, "u1")), "field 0 is unset or unknown"),
        (_conditional(_leaf(7, "u1")), "field 7 is unset or unknown"),  # type: ignore[arg-type]
    ],
    ids=[
        "unspecified-kind",
        "unknown-kind",
        "conditional-without-filter",
        "empty-node",
        "nested-empty-node",
        "unspecified-field",
        "unknown-field",
    ],
)
def test_z5_malformed_plans_fail_closed(plan: az.PlanListResponse, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_plan(select(DOCS.c.id), plan, COLUMNS)
    with pytest.raises(ValueError, match=message):
        plan_filter(plan, NO_TEAM)


def test_z5_unspecified_field_fails_closed_even_beside_a_matching_leaf() -> None:
    node = _any(_leaf(az.FILTER_FIELD_ORG_ID, "o"), _leaf(az.FILTER_FIELD_UNSPECIFIED, "o"))
    with pytest.raises(ValueError, match="refusing to list"):
        apply_plan(select(DOCS.c.id), _conditional(node), COLUMNS)
