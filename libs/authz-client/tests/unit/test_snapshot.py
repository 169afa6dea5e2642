"""Converting served snapshots, catalogs and filters into the rules' terms (Z1, Z5)."""

from __future__ import annotations

import pytest

from helios.authz_client.catalog import CatalogState
from helios.authz_client.rpc import filter_from_proto
from helios.authz_client.snapshot import (
    CatalogSnapshot,
    actor_type_of,
    catalog_from_proto,
    narrowing_of,
    snapshot_from_proto,
    subject_of,
)
from helios.authz_rules.evaluator import ActorType
from helios.authz_rules.permissions import Catalog, Grant, Scope, parse_key, permission
from helios.authz_rules.plan import And, Eq, In, Or
from helios.kernel.errors import InvalidArgumentError
from helios.proto.authz.v1 import authz_pb2 as az
from helios.proto.common.v1 import principal_pb2

pytestmark = pytest.mark.unit

PRINCIPAL = principal_pb2.Principal(
    actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id="u1", org_id="o1"
)


def _grant(key: str, scope: az.Scope.ValueType, role: str = "r1") -> az.Grant:
    return az.Grant(
        role_id=role,
        role_name=f"role {role}",
        assignment_id=f"a-{role}",
        permission=az.ScopedPermission(permission=key, scope=scope),
        source=az.GRANT_SOURCE_ROLE_ASSIGNMENT,
    )


def test_z1_snapshot_keeps_served_grants_in_order_and_skips_unreadable_ones() -> None:
    reply = az.GetSubjectSnapshotResponse(
        grants=[
            _grant("x.doc.read", az.SCOPE_ANY, "r1"),
            _grant("x.doc.read", az.SCOPE_ANY, "r2"),
            _grant("x.doc.update", az.SCOPE_UNSPECIFIED),
            _grant("x..bad", az.SCOPE_OWN),
            _grant("x.doc.update", az.SCOPE_OWN, "r3"),
        ],
        team_ids=["t1"],
        org_dangerous_actions=["x.doc.update"],
        platform_root=False,
        revision=7,
        catalog_revision=3,
    )
    snapshot = snapshot_from_proto(PRINCIPAL, reply)
    assert (snapshot.org_id, snapshot.actor_id) == ("o1", "u1")
    assert [h.role_id for h in snapshot.held] == ["r1", "r2", "r3"]
    assert snapshot.grants == {
        Grant(parse_key("x.doc.read"), Scope.ANY),
        Grant(parse_key("x.doc.update"), Scope.OWN),
    }
    held = snapshot.holding(Grant(parse_key("x.doc.read"), Scope.ANY))
    assert held is not None
    assert held.role_id == "r1"
    assert held.assignment_id == "a-r1"
    assert snapshot.holding(None) is None
    assert (snapshot.revision, snapshot.catalog_revision) == (7, 3)
    assert snapshot.team_ids == {"t1"}
    assert snapshot.org_dangerous == {"x.doc.update"}


def test_z1_subject_applies_ai_narrowing_only_to_ai_and_only_when_given() -> None:
    snapshot = snapshot_from_proto(PRINCIPAL, az.GetSubjectSnapshotResponse(revision=1))
    narrowing = narrowing_of(["x.doc.read"])
    assert subject_of(snapshot, ActorType.USER, narrowing).ai_narrowing is None
    assert subject_of(snapshot, ActorType.AI, frozenset()).ai_narrowing is None
    assert subject_of(snapshot, ActorType.AI, narrowing).ai_narrowing == frozenset({"x.doc.read"})
    with pytest.raises(InvalidArgumentError):
        narrowing_of(["x.doc"])


def test_z1_principal_must_name_type_actor_and_org() -> None:
    assert actor_type_of(PRINCIPAL) is ActorType.USER
    for broken in (
        principal_pb2.Principal(actor_id="u", org_id="o"),
        principal_pb2.Principal(actor_type=principal_pb2.ACTOR_TYPE_AI, org_id="o"),
        principal_pb2.Principal(actor_type=principal_pb2.ACTOR_TYPE_AI, actor_id="u"),
    ):
        with pytest.raises(InvalidArgumentError, match="principal"):
            actor_type_of(broken)


def test_z1_catalog_from_pages_defaults_scopes_and_skips_unreadable_entries() -> None:
    entries = [
        az.Permission(
            key="x.doc.read",
            description="Read.",
            allowed_scopes=[az.SCOPE_OWN, az.SCOPE_ANY],
            default_dangerous=False,
        ),
        az.Permission(key="x.doc.delete", description="", default_dangerous=True),
        az.Permission(key="x.doc", description="Bad."),
    ]
    catalog = catalog_from_proto(entries, 4)
    assert catalog.revision == 4
    read = catalog.catalog.get("x.doc.read")
    assert read is not None
    assert read.allowed_scopes == {Scope.OWN, Scope.ANY}
    delete = catalog.catalog.get("x.doc.delete")
    assert delete is not None
    assert delete.allowed_scopes == {Scope.ANY}
    assert delete.dangerous
    assert len(catalog.catalog) == 2


def test_z5_served_filters_convert_to_the_rules_filters() -> None:
    leaf = az.FilterNode(leaf=az.FilterLeaf(field=az.FILTER_FIELD_ORG_ID, values=["o1"]))
    teams = az.FilterNode(leaf=az.FilterLeaf(field=az.FILTER_FIELD_TEAM_ID, values=["a", "b"]))
    owner = az.FilterNode(leaf=az.FilterLeaf(field=az.FILTER_FIELD_OWNER_ID, values=["u1"]))
    node = az.FilterNode(
        all_of=az.FilterNodeList(
            nodes=[leaf, az.FilterNode(any_of=az.FilterNodeList(nodes=[owner, teams]))]
        )
    )
    assert filter_from_proto(node) == And(
        (Eq("org_id", "o1"), Or((Eq("owner_id", "u1"), In("team_id", ("a", "b")))))
    )
    unknown = az.FilterNode(leaf=az.FilterLeaf(field=az.FILTER_FIELD_UNSPECIFIED, values=["x"]))
    assert filter_from_proto(unknown) == Or(())
    assert filter_from_proto(az.FilterNode()) == Or(())


def test_z1_catalog_is_fetched_for_new_revisions_at_once_and_for_unknown_keys_rarely() -> None:
    state = CatalogState(refresh_interval=1.0)
    known, unknown = parse_key("x.doc.read"), parse_key("x.doc.publish")
    assert state.due(known, 0, now=0.0)
    state.stored(CatalogSnapshot(Catalog([permission("x.doc.read", "Read.")]), 3), 10.0, 3)
    assert not state.due(known, 3, now=10.1)
    assert not state.due(unknown, 3, now=10.5)  # refreshed recently
    assert state.due(unknown, 3, now=11.0)
    assert state.due(known, 4, now=10.1)  # a snapshot names a newer catalog: at once
    state.stored(CatalogSnapshot(state.current.catalog if state.current else Catalog(), 3), 10.2, 4)
    assert not state.due(known, 4, now=10.3)  # asked for 4, got 3: not again right away
    assert state.due(known, 4, now=11.2)
    state.announced(5, now=10.4)
    assert state.due(known, 0, now=10.4)
    state.stored(CatalogSnapshot(Catalog(), 5), 10.5, 5)
    state.announced(None, now=10.6)  # unreadable: stale, refreshed within the interval
    assert not state.due(known, 0, now=10.7)
    assert state.due(known, 0, now=11.5)
