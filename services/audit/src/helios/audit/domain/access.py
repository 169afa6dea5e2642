"""Who may act on an org's Merkle log (seal and read checkpoints, proofs, exports)."""

from __future__ import annotations

from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, PermissionDeniedError

__all__ = ["MAX_ORG_ID", "SERVICE_CALLERS", "authorize_log"]

SERVICE_CALLERS = frozenset({"identity", "authz", "ai-broker", "audit", "keyvault", "gateway"})
"""mTLS identities that may act on any org's log when calling without a principal."""

MAX_ORG_ID = 64
"""Characters in an org id (audit_log.org_id)."""


def authorize_log(ctx: CallContext, org_id: str) -> None:
    """Returns None when the caller may act on `org_id`'s log: a principal only on its own org;
    a Helios service by its mTLS identity (SERVICE_CALLERS) calling without a principal, on any
    org. Raises PermissionDeniedError otherwise, InvalidArgumentError for an org id no log can
    have. Permission keys and grant scopes are not checked here: authz scoping of the log RPCs
    is a later step."""
    if ctx.principal is not None:
        own = ctx.principal.org_id
        if not own or own != org_id:
            raise PermissionDeniedError("the audit log of another org is out of reach")
        return
    if ctx.caller not in SERVICE_CALLERS:
        raise PermissionDeniedError("this caller may not use audit checkpoints or exports")
    if len(org_id) > MAX_ORG_ID:
        raise InvalidArgumentError(f"org_id is longer than {MAX_ORG_ID} characters", field="org_id")
