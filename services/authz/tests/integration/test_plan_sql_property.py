"""Z5 acceptance: a list plan applied in SQL returns exactly the rows Check allows (the Cerbos
list/check divergence bug class), over 1,000 random rows and hundreds of random subjects."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Integer, String, column, insert, select, table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.authz.rpc.convert import plan_to_proto
from helios.authz.service.decisions import PlanResult
from helios.authz_rules.evaluator import ActorType, Resource, Subject, decide
from helios.authz_rules.permissions import Catalog, Grant, Scope, parse_key, permission
from helios.authz_rules.plan import plan_list
from helios.kernel.list_filter import PlanColumns, apply_plan
from helios.proto.authz.v1 import authz_pb2 as az

pytestmark = pytest.mark.integration

SEED = 5
ROWS = 1_000
SUBJECTS = 300
RESOURCE_TYPE = "x.doc"
ORGS = ["org-a", "org-b", "org-c"]
USERS = [f"u{i}" for i in range(8)]
TEAMS = [f"t{i}" for i in range(4)]
CATALOG = Catalog(
    [
        permission("x.doc.read", "Read a document."),
        permission("x.doc.update", "Change a document.", scopes=(Scope.OWN, Scope.ANY)),
        permission("x.doc.share", "Share a document.", scopes=(Scope.OWN, Scope.TEAM)),
        permission("x.doc.delete", "Delete a document.", scopes=(Scope.ANY,)),
        permission("authz.role.assign", "Assign a role.", scopes=(Scope.ANY,)),
        permission("platform.org.suspend", "Suspend an org.", scopes=(Scope.ANY,)),
    ]
)
KEYS = [spec.key for spec in CATALOG]
UNKNOWN = parse_key("x.doc.publish")
# Every key with every scope: including scopes a spec refuses and tenant grants of platform keys.
ALL_GRANTS = [Grant(key, scope) for key in [*KEYS, UNKNOWN] for scope in Scope]

DOCS = table(
    "z5_plan_docs",
    column("id", Integer),
    column("org_id", String),
    column("owner_id", String),
    column("team_id", String),
)
COLUMNS = PlanColumns(org_id=DOCS.c.org_id, owner_id=DOCS.c.owner_id, team_id=DOCS.c.team_id)


def _rows(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "org_id": rng.choice(ORGS),
            "owner_id": rng.choice([*USERS, None, None]),
            "team_id": rng.choice([*TEAMS, None]),
        }
        for i in range(ROWS)
    ]


def _subject(rng: random.Random, key: Any) -> Subject:
    """A random subject: some grants of `key` with random scopes plus unrelated ones, random
    teams (some absent from the rows), any actor type, an AI narrowing or not, rarely the root."""
    grants = {Grant(key, rng.choice(list(Scope))) for _ in range(rng.randint(0, 2))}
    grants |= set(rng.sample(ALL_GRANTS, rng.randint(0, 4)))
    actor_type = rng.choice([ActorType.USER, ActorType.USER, ActorType.AI, ActorType.SYSTEM])
    narrowing = None
    if actor_type is ActorType.AI and rng.random() < 0.6:
        pool = [str(k) for k in [*KEYS, UNKNOWN]]
        narrowing = frozenset(rng.sample(pool, rng.randint(0, len(pool))))
    return Subject(
        actor_type=actor_type,
        actor_id=rng.choice([*USERS, "u-without-rows"]),
        org_id=rng.choice([*ORGS, "org-without-rows"]),
        team_ids=frozenset(rng.sample([*TEAMS, "t-without-rows"], rng.randint(0, 3))),
        grants=frozenset(grants),
        ai_narrowing=narrowing,
        is_platform_root=rng.random() < 0.1,
    )


def _wire_plan(subject: Subject, key: Any) -> az.PlanListResponse:
    """The domain plan as PlanList serves it: convert.plan_to_proto, then across the wire."""
    plan = plan_list(subject, key, RESOURCE_TYPE, CATALOG)
    result = PlanResult(plan=plan, decision_id="", dangerous=False, revision=0)
    return az.PlanListResponse.FromString(plan_to_proto(result).SerializeToString())


async def test_z5_plan_list_in_sql_returns_exactly_the_rows_check_allows(
    db_connection: AsyncConnection,
) -> None:
    rng = random.Random(SEED)
    rows = _rows(rng)
    resources = [
        Resource(RESOURCE_TYPE, str(r["id"]), r["org_id"], r["owner_id"], r["team_id"])
        for r in rows
    ]
    await db_connection.execute(
        text(
            "CREATE TEMP TABLE z5_plan_docs"
            " (id integer PRIMARY KEY, org_id text NOT NULL, owner_id text, team_id text)"
            " ON COMMIT DROP"
        )
    )
    await db_connection.execute(insert(DOCS), rows)
    kinds: Counter[int] = Counter()
    partial = 0
    for n in range(SUBJECTS):
        key = rng.choice([*KEYS, *KEYS, UNKNOWN])
        subject = _subject(rng, key)
        plan = _wire_plan(subject, key)
        listed = set(
            (await db_connection.execute(apply_plan(select(DOCS.c.id), plan, COLUMNS))).scalars()
        )
        allowed = {int(res.id) for res in resources if decide(subject, key, res, CATALOG).allowed}
        assert listed == allowed, (
            f"subject #{n} (seed {SEED}) {subject} on {key}: plan {plan}"
            f" lists {sorted(listed - allowed)[:5]} that Check denies"
            f" and misses {sorted(allowed - listed)[:5]} that Check allows"
        )
        kinds[plan.kind] += 1
        partial += 0 < len(allowed) < ROWS
    # The random subjects reach every plan kind, and many conditional plans select a proper subset.
    assert set(kinds) == {
        az.PLAN_KIND_ALWAYS_ALLOWED,
        az.PLAN_KIND_ALWAYS_DENIED,
        az.PLAN_KIND_CONDITIONAL,
    }, kinds
    assert partial >= SUBJECTS // 5, (partial, kinds)
