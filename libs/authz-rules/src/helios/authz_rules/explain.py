"""The evaluation path of a decision, step by step, in the order decide() applies its rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from helios.authz_rules.dangerous import is_dangerous
from helios.authz_rules.evaluator import (
    AI_FORBIDDEN_PATTERNS,
    ActorType,
    Decision,
    Resource,
    Subject,
    decide,
    scope_matches,
    usable_grants,
)
from helios.authz_rules.permissions import (
    PLATFORM_MODULE,
    Catalog,
    Grant,
    PermissionKey,
    key_matches,
    parse_key,
)

__all__ = ["Step", "StepKind", "explain"]


class StepKind(enum.Enum):
    """The rule a step evaluated."""

    CATALOG = "catalog"
    AI_RESTRICTION = "ai_restriction"
    PLATFORM_RESERVED = "platform_reserved"
    TENANCY = "tenancy"
    GRANT = "grant"
    SCOPE = "scope"
    DANGEROUS = "dangerous"


@dataclass(frozen=True, slots=True)
class Step:
    """One rule evaluated: whether it passed, one sentence, and the grant concerned (if any)."""

    kind: StepKind
    passed: bool
    detail: str
    grant: Grant | None = None


def _ai_steps(subject: Subject, key: PermissionKey) -> list[Step]:
    if subject.actor_type is not ActorType.AI:
        return []
    if any(key_matches(p, key) for p in AI_FORBIDDEN_PATTERNS):
        return [Step(StepKind.AI_RESTRICTION, False, f"an AI may never use {key}")]
    if subject.ai_narrowing is not None and str(key) not in subject.ai_narrowing:
        return [Step(StepKind.AI_RESTRICTION, False, f"{key} is outside the AI's narrowing")]
    return [Step(StepKind.AI_RESTRICTION, True, "the AI acts within its user's rights")]


def _grant_steps(
    subject: Subject, key: PermissionKey, resource: Resource, catalog: Catalog
) -> list[Step]:
    spec = catalog.get(key)
    assert spec is not None
    grants = usable_grants(subject, key, spec)
    if not grants:
        return [Step(StepKind.GRANT, False, f"no role of {subject.actor_id} grants {key}")]
    steps: list[Step] = []
    target = f"{resource.type}/{resource.id}" if resource.type else "the org"
    for grant in grants:
        steps.append(Step(StepKind.GRANT, True, f"a role grants {grant}", grant))
        reaches = scope_matches(grant.scope, subject, resource)
        verb = "reaches" if reaches else "does not reach"
        steps.append(Step(StepKind.SCOPE, reaches, f"{grant} {verb} {target}", grant))
        if reaches:
            break
    return steps


def explain(
    subject: Subject,
    permission_key: str | PermissionKey,
    resource: Resource,
    catalog: Catalog,
    org_dangerous: frozenset[str] = frozenset(),
) -> tuple[Decision, list[Step]]:
    """decide()'s answer with the path that led to it; the path stops at the first failing
    rule, as decide() does, and ends with the dangerous flag when the key is known."""
    key = parse_key(permission_key)
    decision = decide(subject, key, resource, catalog)
    spec = catalog.get(key)
    if spec is None:
        return decision, [Step(StepKind.CATALOG, False, f"{key} is not in the catalog")]
    steps = [Step(StepKind.CATALOG, True, f"{key}: {spec.description}")]
    steps += _ai_steps(subject, key)
    if steps[-1].passed:
        platform = key.module == PLATFORM_MODULE
        if platform:
            holder = "the platform root" if subject.is_platform_root else "not the platform root"
            steps.append(
                Step(
                    StepKind.PLATFORM_RESERVED,
                    subject.is_platform_root,
                    f"{subject.actor_id} is {holder}",
                )
            )
        elif resource.org_id != subject.org_id:
            steps.append(Step(StepKind.TENANCY, False, "the resource belongs to another org"))
        else:
            steps.append(Step(StepKind.TENANCY, True, f"the resource is in org {subject.org_id}"))
            steps += _grant_steps(subject, key, resource, catalog)
    dangerous = is_dangerous(key, spec.dangerous, org_dangerous)
    flag = "dangerous" if dangerous else "not dangerous"
    steps.append(Step(StepKind.DANGEROUS, True, f"{key} is {flag} in this org"))
    return decision, steps
