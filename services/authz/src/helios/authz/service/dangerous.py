"""The org's dangerous actions (D1 defaults, D2 additions), effective at once for decisions."""

from __future__ import annotations

from helios.authz.ports import UnitOfWork
from helios.authz.service.access import Access
from helios.authz.service.writes import record_write
from helios.authz_rules.dangerous import DEFAULT_DANGEROUS_CLASSES, parse_org_extra
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError
from helios.proto.authz.v1 import events_pb2

__all__ = ["MAX_ORG_PATTERNS", "DangerousService"]

MAX_ORG_PATTERNS = 500


class DangerousService:
    """GetDangerousActions / SetDangerousActions; D1 defaults can never be unmarked."""

    def __init__(self, uow: UnitOfWork, access: Access) -> None:
        self._uow = uow
        self._access = access

    async def get(self, ctx: CallContext, org_id: str) -> tuple[list[str], list[str], int]:
        """The D1 default patterns plus catalog keys flagged by their spec, the org's own
        patterns, and the revision read at."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.dangerousAction.read", "authz.dangerousAction"
        )
        async with self._uow() as tx:
            revision = await tx.revisions.current(actor.org_id)
            marked = await tx.dangerous.patterns(actor.org_id)
            flagged = [str(e.spec.key) for e in await tx.catalog.permissions() if e.spec.dangerous]
        defaults = sorted({p for c in DEFAULT_DANGEROUS_CLASSES for p in c.patterns} | set(flagged))
        return defaults, sorted(marked), revision

    async def set(
        self, ctx: CallContext, org_id: str, patterns: list[str]
    ) -> tuple[list[str], int]:
        """Replace the org's extra dangerous keys and patterns; audited with before / after."""
        actor = await self._access.authorize(
            ctx, org_id, "authz.dangerousAction.update", "authz.dangerousAction"
        )
        if len(patterns) > MAX_ORG_PATTERNS:
            raise InvalidArgumentError(
                f"at most {MAX_ORG_PATTERNS} dangerous actions", field="permissions"
            )
        wanted = parse_org_extra(patterns)
        async with self._uow() as tx:
            before = await tx.dangerous.patterns(actor.org_id)
            if before == wanted:
                return sorted(wanted), await tx.revisions.current(actor.org_id)
            revision = await tx.revisions.bump(actor.org_id)
            await tx.dangerous.replace(actor.org_id, wanted, revision)
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                events_pb2.POLICY_CHANGE_KIND_DANGEROUS_ACTIONS,
                Change(
                    "authz.dangerousAction.update",
                    "authz.dangerousAction",
                    actor.org_id,
                    diff={"before": sorted(before), "after": sorted(wanted)},
                ),
            )
        return sorted(wanted), revision
