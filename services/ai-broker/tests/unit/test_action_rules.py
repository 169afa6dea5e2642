"""The action registry's rules (I5): names of one's own module, valid keys, schemas, targets and
summary templates; never-for-AI classes (I2); dangerous patterns (D1, D2)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from helios.ai_broker.domain.actions import (
    MAX_ACTIONS,
    ActionDefinition,
    is_dangerous,
    may_register,
    modules_of,
    never_for_ai,
    validate_action_set,
)
from helios.kernel.errors import InvalidArgumentError

pytestmark = pytest.mark.unit

OFFER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "candidate_id": {"type": "string", "minLength": 1},
        "salary": {"type": "integer", "exclusiveMinimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
    "required": ["candidate_id", "salary", "currency"],
    "additionalProperties": False,
}
OFFER = ActionDefinition(
    name="recruitment.offer.send",
    description="Send a job offer to a candidate",
    permission="recruitment.offer.send",
    input_schema=OFFER_SCHEMA,
    target_method="/helios.proto.recruitment.v1.RecruitmentService/SendOffer",
    ai_allowed=True,
    summary_template="Send an offer of {salary} {currency} to candidate {candidate_id}",
)


def _refused(field: str, match: str, **changes: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=match) as caught:
        validate_action_set("recruitment", [dataclasses.replace(OFFER, **changes)])
    assert caught.value.field == f"actions[0].{field}"


def test_i5_a_valid_set_comes_back_ordered_by_name() -> None:
    listing = dataclasses.replace(
        OFFER,
        name="recruitment.candidate.list",
        permission="recruitment.candidate.list",
        input_schema={"type": "object", "properties": {}},
        summary_template="List the candidates you can see",
    )
    assert validate_action_set("recruitment", [OFFER, listing]) == (listing, OFFER)


def test_i5_a_service_registers_only_actions_of_its_own_modules() -> None:
    _refused("name", "only its own actions", name="payroll.offer.send")
    assert modules_of("identity") == {"identity", "iam"}
    assert modules_of("recruitment") == {"recruitment"}
    assert modules_of("not-a-module") == frozenset()
    with pytest.raises(InvalidArgumentError, match="only its own actions"):
        validate_action_set("identity", [dataclasses.replace(OFFER, ai_allowed=False)])


def test_i5_only_helios_services_and_known_product_services_may_register() -> None:
    assert may_register("identity", frozenset())
    assert may_register("recruitment", frozenset({"recruitment"}))
    assert not may_register("recruitment", frozenset())
    assert not may_register("gateway", frozenset({"recruitment"}))


def test_i5_malformed_names_and_permissions_are_refused_naming_the_field() -> None:
    _refused("name", "<module>.<entity>.<verb>", name="recruitment.offer")
    _refused("name", "<module>.<entity>.<verb>", name="recruitment.Offer.send")
    _refused("permission", "<module>.<entity>.<verb>", permission="recruitment offer send")
    _refused("description", "1-300 characters", description=" ")
    _refused("description", "one line", description="Send\nan offer")


def test_i5_a_name_listed_twice_or_too_many_actions_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="listed twice") as caught:
        validate_action_set("recruitment", [OFFER, OFFER])
    assert caught.value.field == "actions[1].name"
    many = [dataclasses.replace(OFFER, name=f"recruitment.offer.v{i}") for i in range(201)]
    with pytest.raises(InvalidArgumentError, match=f"at most {MAX_ACTIONS}"):
        validate_action_set("recruitment", many)


@pytest.mark.parametrize(
    ("schema", "match"),
    [
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "not a valid JSON Schema"),
        ({"type": "object", "required": "salary"}, "not a valid JSON Schema"),
        ({"type": "array"}, "type object"),
        ({}, "type object"),
        ({"type": "object", "$schema": "http://json-schema.org/draft-04/schema#"}, "2020-12"),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            "only inside itself",
        ),
        (
            {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(900)}},
            "larger than",
        ),
    ],
)
def test_i5_unusable_input_schemas_are_refused(schema: dict[str, Any], match: str) -> None:
    _refused("input_schema", match, input_schema=schema, summary_template="Send an offer")


def test_i5_local_references_are_accepted() -> None:
    schema = {
        "type": "object",
        "$defs": {"money": {"type": "integer", "exclusiveMinimum": 0}},
        "properties": {"salary": {"$ref": "#/$defs/money"}},
    }
    changed = dataclasses.replace(OFFER, input_schema=schema, summary_template="Pay {salary}")
    assert validate_action_set("recruitment", [changed]) == (changed,)


@pytest.mark.parametrize(
    "target",
    [
        "helios.proto.recruitment.v1.RecruitmentService/SendOffer",
        "/helios.proto.recruitment.v1.RecruitmentService",
        "/RecruitmentService/SendOffer",
        "/helios.proto.recruitment.v1.recruitmentService/SendOffer",
        "/helios.proto.recruitment.v1.RecruitmentService/SendOffer/x",
        "http://evil.example/SendOffer",
    ],
)
def test_i5_a_target_method_must_be_a_grpc_method_path(target: str) -> None:
    _refused("target_method", "/<package>.<Service>/<Method>", target_method=target)


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("Send {amount} to {candidate_id}", "names amount"),
        ("Send {salary!r}", "only as {field} placeholders"),
        ("Send {salary:>10}", "only as {field} placeholders"),
        ("Send {salary.__class__}", "only as {field} placeholders"),
        ("Send {}", "only as {field} placeholders"),
        ("Send {salary", "only as {field} placeholders"),
        ("Send {{salary}}", "only as {field} placeholders"),
        ("", "1-500 characters"),
        ("Send\n{salary}", "one line"),
    ],
)
def test_i5_a_summary_template_names_only_top_level_input_properties(
    template: str, match: str
) -> None:
    _refused("summary_template", match, summary_template=template)


@pytest.mark.parametrize(
    ("name", "permission"),
    [
        ("identity.apiKey.create", "identity.apiKey.create"),
        ("identity.token.mint", "identity.apiKey.create"),
        ("iam.user.impersonate", "iam.user.impersonate"),
        ("authz.role.create", "authz.role.create"),
        ("authz.roleAssignment.create", "authz.roleAssignment.create"),
        ("authz.userType.assign", "authz.userType.assign"),
        ("authz.team.read", "authz.team.read"),
        ("recruitment.role.assign", "recruitment.role.assign"),
        ("recruitment.candidate.list", "ai.session.create"),
        ("recruitment.candidate.list", "authz.roleAssignment.create"),
    ],
)
def test_i2_never_for_ai_classes_cannot_be_ai_allowed(name: str, permission: str) -> None:
    assert never_for_ai(name, permission) is not None
    module = name.split(".", 1)[0]
    service = {"iam": "identity"}.get(module, module)
    definition = dataclasses.replace(OFFER, name=name, permission=permission)
    with pytest.raises(InvalidArgumentError, match="never allowed to an AI") as caught:
        validate_action_set(service, [definition])
    assert caught.value.field == "actions[0].ai_allowed"
    kept = dataclasses.replace(definition, ai_allowed=False)
    assert validate_action_set(service, [kept]) == (kept,)


def test_i2_ordinary_actions_may_be_ai_allowed() -> None:
    assert never_for_ai("recruitment.offer.send", "recruitment.offer.send") is None
    assert never_for_ai("identity.apiKeyUsage.list", "identity.session.list") is None


def test_d1_d2_dangerous_flags_follow_authz_patterns() -> None:
    defaults = frozenset({"*.offer.send", "*.*.delete"})
    assert is_dangerous("recruitment.offer.send", defaults)
    assert not is_dangerous("recruitment.candidate.list", defaults)
    assert is_dangerous("recruitment.candidate.list", defaults | {"recruitment.candidate.list"})
    assert is_dangerous("recruitment.candidate.list", defaults | {"recruitment.*.*"})
