"""The action registry's rules (I5): what a service may register, what an AI may never be allowed,
and which actions are dangerous for an org (D1, D2)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from helios.ai_broker.domain.hashing import canonical_json
from helios.ai_broker.domain.model import Action
from helios.kernel.errors import InvalidArgumentError

__all__ = [
    "HELIOS_ACTION_SERVICES",
    "MAX_ACTIONS",
    "MAX_SCHEMA_CHARS",
    "NEVER_FOR_AI",
    "ActionDefinition",
    "definition_of",
    "is_dangerous",
    "key_matches",
    "may_register",
    "modules_of",
    "never_for_ai",
    "validate_action_set",
]

MAX_ACTIONS = 200
"""Actions one service may register."""
MAX_SCHEMA_CHARS = 16_384
"""Size bound of an input schema, as canonical JSON."""
MAX_DESCRIPTION_CHARS = 300
MAX_TEMPLATE_CHARS = 500
_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_PART = r"[a-z][a-zA-Z0-9]{0,62}"
_KEY = re.compile(rf"{_PART}\.{_PART}\.{_PART}")
_MODULE = re.compile(_PART)
_TARGET = re.compile(r"/[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*\.[A-Z][A-Za-z0-9]*/[A-Z][A-Za-z0-9]*")
_MAX_TARGET_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

_HELIOS_MODULES: Mapping[str, frozenset[str]] = {
    "identity": frozenset({"identity", "iam"}),
    "authz": frozenset({"authz"}),
    "audit": frozenset({"audit"}),
    "keyvault": frozenset({"keyvault"}),
}
HELIOS_ACTION_SERVICES: frozenset[str] = frozenset(_HELIOS_MODULES)
"""Helios services (mTLS identities) that may register actions of their own modules."""

NEVER_FOR_AI: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("creating API keys", ("identity.apiKey.*", "*.apiKey.create")),
    ("impersonation", ("iam.user.impersonate", "*.*.impersonate")),
    ("changing roles or permissions", ("authz.*.*", "*.role.assign", "*.permission.grant")),
    ("the AI's own rights", ("ai.*.*",)),
)
"""Classes of actions never ai_allowed, whatever service registers them (I2): an action whose
name or permission matches one of a class's patterns (three parts, each literal or `*`)."""


@dataclass(frozen=True, slots=True)
class ActionDefinition:
    """An action as its service declares it; `input_schema` is a JSON Schema (draft 2020-12)
    of an object, `summary_template` names top-level input properties as `{field}`."""

    name: str
    description: str
    permission: str
    input_schema: dict[str, Any]
    target_method: str
    ai_allowed: bool
    summary_template: str


def definition_of(action: Action) -> ActionDefinition:
    """The definition a registered action was registered with."""
    return ActionDefinition(
        name=action.name,
        description=action.description,
        permission=action.permission,
        input_schema=action.input_schema,
        target_method=action.target_method,
        ai_allowed=action.ai_allowed,
        summary_template=action.summary_template,
    )


def modules_of(service: str) -> frozenset[str]:
    """The permission modules whose actions `service` may register: a Helios service's own, a
    product service's name (authz's rule for its permissions); empty for an unusable name."""
    if service in _HELIOS_MODULES:
        return _HELIOS_MODULES[service]
    return frozenset({service}) if _MODULE.fullmatch(service) else frozenset()


def may_register(service: str, product_services: Collection[str]) -> bool:
    """Whether `service` may register actions: a Helios service, or a product service the
    broker knows how to call (its `action_targets`)."""
    return service in HELIOS_ACTION_SERVICES or service in product_services


def key_matches(pattern: str, key: str) -> bool:
    """Whether the three-part `key` matches `pattern` (three parts, each literal or `*`)."""
    wanted, actual = pattern.split("."), key.split(".")
    return len(wanted) == len(actual) == 3 and all(
        w in ("*", a) for w, a in zip(wanted, actual, strict=True)
    )


def never_for_ai(name: str, permission: str) -> str | None:
    """Which never-for-AI class the action named `name` requiring `permission` belongs to, or
    None when it may be ai_allowed."""
    for label, patterns in NEVER_FOR_AI:
        if any(key_matches(p, k) for p in patterns for k in (name, permission)):
            return label
    return None


def is_dangerous(permission: str, patterns: Iterable[str]) -> bool:
    """Whether an action requiring `permission` is dangerous under `patterns` (the org's D1
    defaults, spec-flagged keys and D2 marks, as authz reports them)."""
    return any(key_matches(p, permission) for p in patterns)


def validate_action_set(
    service: str, definitions: Sequence[ActionDefinition]
) -> tuple[ActionDefinition, ...]:
    """The full action set of `service`, ordered by name; raises InvalidArgumentError naming the
    first offending field (`actions[i].<field>`): too many actions, a repeated name, or a
    definition breaking a rule of `_validate_definition`."""
    if len(definitions) > MAX_ACTIONS:
        raise InvalidArgumentError(f"at most {MAX_ACTIONS} actions per service", field="actions")
    modules = modules_of(service)
    seen: set[str] = set()
    for index, definition in enumerate(definitions):
        _validate_definition(definition, modules, f"actions[{index}]")
        if definition.name in seen:
            raise InvalidArgumentError(
                f"action {definition.name} is listed twice", field=f"actions[{index}].name"
            )
        seen.add(definition.name)
    return tuple(sorted(definitions, key=lambda d: d.name))


def _validate_definition(definition: ActionDefinition, modules: Collection[str], at: str) -> None:
    """Raise InvalidArgumentError (field `<at>.<field>`) unless: the name is a key of one of
    `modules`; the description one line of 1..300 characters; the permission a key; the schema
    a bounded draft 2020-12 object schema; the target a `/<package>.<Service>/<Method>`; every
    summary placeholder a top-level input property; and ai_allowed is not set on a never-for-AI
    action."""
    name = definition.name
    if not _KEY.fullmatch(name):
        raise InvalidArgumentError(
            f"action name {name!r} must be <module>.<entity>.<verb>", field=f"{at}.name"
        )
    if name.split(".", 1)[0] not in modules:
        allowed = ", ".join(f"{m}.*" for m in sorted(modules)) or "nothing"
        raise InvalidArgumentError(
            f"action {name}: a service registers only its own actions ({allowed})",
            field=f"{at}.name",
        )
    description = definition.description
    if not description.strip() or len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgumentError(
            f"action {name}: description must be 1-{MAX_DESCRIPTION_CHARS} characters",
            field=f"{at}.description",
        )
    if _CONTROL.search(description):
        raise InvalidArgumentError(
            f"action {name}: description must be one line", field=f"{at}.description"
        )
    if not _KEY.fullmatch(definition.permission):
        raise InvalidArgumentError(
            f"action {name}: permission {definition.permission!r} must be <module>.<entity>.<verb>",
            field=f"{at}.permission",
        )
    properties = _validate_schema(name, definition.input_schema, f"{at}.input_schema")
    target = definition.target_method
    if len(target) > _MAX_TARGET_CHARS or not _TARGET.fullmatch(target):
        raise InvalidArgumentError(
            f"action {name}: target_method {target!r} must be /<package>.<Service>/<Method>",
            field=f"{at}.target_method",
        )
    _validate_template(name, definition.summary_template, properties, f"{at}.summary_template")
    if definition.ai_allowed:
        refused = never_for_ai(name, definition.permission)
        if refused is not None:
            raise InvalidArgumentError(
                f"action {name}: {refused} is never allowed to an AI", field=f"{at}.ai_allowed"
            )


def _validate_schema(name: str, schema: dict[str, Any], field: str) -> frozenset[str]:
    """The schema's top-level property names, once it is known to be usable."""
    if len(canonical_json(schema)) > MAX_SCHEMA_CHARS:
        raise InvalidArgumentError(
            f"action {name}: input_schema is larger than {MAX_SCHEMA_CHARS} characters",
            field=field,
        )
    if schema.get("$schema", _DRAFT_2020_12) != _DRAFT_2020_12:
        raise InvalidArgumentError(
            f"action {name}: input_schema must be draft 2020-12 ($schema {_DRAFT_2020_12})",
            field=field,
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(top)"
        raise InvalidArgumentError(
            f"action {name}: input_schema is not a valid JSON Schema at {where}: {exc.message}",
            field=field,
        ) from None
    if schema.get("type") != "object":
        raise InvalidArgumentError(
            f"action {name}: input_schema must have type object", field=field
        )
    remote = next(_remote_references(schema), None)
    if remote is not None:
        raise InvalidArgumentError(
            f"action {name}: input_schema may refer only inside itself (#...), not {remote!r}",
            field=field,
        )
    properties = schema.get("properties", {})
    return frozenset(properties) if isinstance(properties, dict) else frozenset()


def _remote_references(node: Any) -> Iterator[str]:
    """`$ref` / `$dynamicRef` values that leave the schema (the broker fetches nothing)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                if not value.startswith("#"):
                    yield value
            else:
                yield from _remote_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _remote_references(item)


def _validate_template(name: str, template: str, properties: frozenset[str], field: str) -> None:
    if not template.strip() or len(template) > MAX_TEMPLATE_CHARS:
        raise InvalidArgumentError(
            f"action {name}: summary_template must be 1-{MAX_TEMPLATE_CHARS} characters (every"
            " action may become dangerous for an org, D2, and then needs a summary)",
            field=field,
        )
    if _CONTROL.search(template):
        raise InvalidArgumentError(f"action {name}: summary_template must be one line", field=field)
    stray = _PLACEHOLDER.sub("", template)
    if "{" in stray or "}" in stray:
        raise InvalidArgumentError(
            f"action {name}: summary_template may hold braces only as {{field}} placeholders"
            " (a field name: letters, digits and _)",
            field=field,
        )
    unknown = sorted(set(_PLACEHOLDER.findall(template)) - properties)
    if unknown:
        raise InvalidArgumentError(
            f"action {name}: summary_template names {', '.join(unknown)}, which the input"
            " schema does not declare as top-level properties",
            field=field,
        )
