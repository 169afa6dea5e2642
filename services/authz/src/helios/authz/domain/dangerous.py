"""Which actions are dangerous: the D1 default classes plus each org's own additions (D2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from helios.authz.domain.permissions import PermissionKey, key_matches, parse_key

__all__ = [
    "DEFAULT_DANGEROUS_CLASSES",
    "DangerousClass",
    "dangerous_class",
    "is_dangerous",
    "parse_org_extra",
]


@dataclass(frozen=True, slots=True)
class DangerousClass:
    """A named class of dangerous actions; a key belongs to it if it matches one of its patterns
    (three dot-separated parts, each literal or `*`)."""

    name: str
    patterns: tuple[str, ...]

    def contains(self, key: PermissionKey) -> bool:
        """Whether `key` belongs to this class."""
        return any(key_matches(p, key) for p in self.patterns)


DEFAULT_DANGEROUS_CLASSES: tuple[DangerousClass, ...] = (
    DangerousClass("outbound e-mail", ("email.outbound.send",)),
    DangerousClass("support reply", ("support.reply.send", "support.ticket.reply")),
    DangerousClass("offer sent to a candidate", ("*.offer.send",)),
    DangerousClass("deletion", ("*.*.delete",)),
    DangerousClass("payroll finalize, disbursement", ("payroll.*.finalize", "payroll.*.disburse")),
    DangerousClass("account merge", ("*.account.merge",)),
    DangerousClass("permission grant", ("*.permission.grant", "authz.*.grant")),
    DangerousClass("role assignment", ("*.role.assign", "authz.*.assign")),
    DangerousClass("organization deletion", ("saas.organization.delete",)),
    DangerousClass("session revocation", ("iam.user.revokeSessions",)),
)
"""The D1 defaults (FEATURES.md): dangerous out of the box, whatever the spec's flag says."""


def dangerous_class(key: str | PermissionKey) -> DangerousClass | None:
    """The first default class `key` belongs to, or None; for explanations."""
    parsed = parse_key(key)
    for cls in DEFAULT_DANGEROUS_CLASSES:
        if cls.contains(parsed):
            return cls
    return None


def parse_org_extra(keys: Iterable[str]) -> frozenset[str]:
    """An org's extra dangerous keys (D2), validated and normalised; raises InvalidArgumentError
    on a malformed key."""
    return frozenset(str(parse_key(k)) for k in keys)


def is_dangerous(key: str | PermissionKey, spec_flag: bool, org_extra: frozenset[str]) -> bool:
    """Whether the action is dangerous: flagged by its spec, in a D1 default class, or marked by
    the org (D2). Raises InvalidArgumentError on a malformed key."""
    parsed = parse_key(key)
    return spec_flag or dangerous_class(parsed) is not None or str(parsed) in org_extra
