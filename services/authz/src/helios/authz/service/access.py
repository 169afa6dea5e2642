"""Who may administer an org's policy: its members by their own authz grants, or Helios services."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from helios.authz.service.caches import Consistency, Freshness
from helios.authz.service.decisions import DecisionService, Query, subject_of
from helios.authz_rules.evaluator import Resource
from helios.authz_rules.permissions import Grant
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, PermissionDeniedError
from helios.proto.common.v1 import principal_pb2

__all__ = ["HELIOS_SERVICES", "Access", "Actor", "valid_org_id"]

HELIOS_SERVICES: frozenset[str] = frozenset(
    {"identity", "authz", "ai-broker", "audit", "keyvault", "gateway"}
)
"""mTLS identities that may register permissions, administer orgs and ask on behalf of others."""

_ORG_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FRESH = Consistency(Freshness.FULLY_CONSISTENT)


def valid_org_id(value: str, field: str = "org_id") -> str:
    """`value` if it is a usable org id (also a NATS subject token), else InvalidArgumentError."""
    if not _ORG_ID.fullmatch(value):
        raise InvalidArgumentError(f"{field} must be 1-64 letters, digits, '-' or '_'", field=field)
    return value


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an administrative write: the org it acts in, how it is named in history
    (`user:<id>` or `service:<name>`) and the id of the decision that allowed it."""

    org_id: str
    name: str
    decision_id: str = ""


class Access:
    """The org-admin check: a user needs the RPC's permission (e.g. `authz.role.create`) in the
    org it acts in, decided by authz's own rules on its current grants (read fully consistent);
    another org is refused, and an AI principal never administers authz (it may not change
    anyone's rights, its own included). A Helios service (mTLS identity) acts for the org it
    names."""

    def __init__(self, decisions: DecisionService, registrars: frozenset[str]) -> None:
        self._decisions = decisions
        self._registrars = registrars

    async def authorize(
        self,
        ctx: CallContext,
        org_id: str,
        permission: str,
        resource_type: str,
        resource_id: str = "",
    ) -> Actor:
        """The actor allowed to do `permission` in `org_id` (empty: the principal's org), or
        PermissionDeniedError naming what is missing."""
        principal = ctx.principal
        if principal is None:
            if ctx.caller not in self._registrars:
                raise PermissionDeniedError("this caller may not administer authz")
            return Actor(valid_org_id(org_id), f"service:{ctx.caller}")
        if not principal.org_id:
            raise PermissionDeniedError("the principal belongs to no org")
        org = valid_org_id(org_id or principal.org_id)
        if org != principal.org_id:
            raise PermissionDeniedError("a principal may only administer its own org")
        if principal.actor_type == principal_pb2.ACTOR_TYPE_AI:
            raise PermissionDeniedError("an AI may not administer roles, teams or settings")
        result = await self._decisions.check(
            ctx, Query(principal, permission, Resource(resource_type, resource_id, org)), _FRESH
        )
        if not result.decision.allowed:
            raise PermissionDeniedError(f"{permission} is not granted: {result.decision.reason}")
        return Actor(org, f"user:{principal.actor_id}", result.decision_id)

    async def ensure_grantable(self, ctx: CallContext, grants: Iterable[Grant]) -> None:
        """No escalation: a user may put into a role (or give through one) only grants it holds
        itself at the same or a broader scope. Services are trusted with any tenant grant."""
        principal = ctx.principal
        if principal is None:
            return
        facts = await self._decisions.facts(principal, _FRESH)
        held = subject_of(principal, facts, ()).grants
        missing = [
            str(g)
            for g in sorted(set(grants))
            if not any(h.key == g.key and h.scope.implies(g.scope) for h in held)
        ]
        if missing:
            raise PermissionDeniedError(
                "you cannot grant what you do not hold yourself: " + ", ".join(missing[:10])
            )
