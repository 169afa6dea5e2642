"""Which actions are dangerous: the D1 default classes plus each org's own additions (D2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from helios.authz_rules.permissions import PermissionKey, key_matches, parse_key
from helios.kernel.errors import InvalidArgumentError

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


def parse_org_extra(patterns: Iterable[str]) -> frozenset[str]:
    """An org's extra dangerous keys or patterns (D2; a `*` part matches any part), validated;
    raises InvalidArgumentError on a malformed one. A pattern of only `*` parts is refused."""
    found = set()
    for raw in patterns:
        parts = raw.split(".")
        if len(parts) == 3 and "*" in parts:
            if parts == ["*", "*", "*"]:
                raise InvalidArgumentError(
                    "`*.*.*` would mark everything dangerous; name a module, entity or verb",
                    field="permissions",
                )
            stand_in = [("x" if p == "*" else p) for p in parts]
            parse_key(".".join(stand_in))
            found.add(raw)
        else:
            found.add(str(parse_key(raw)))
    return frozenset(found)


def is_dangerous(key: str | PermissionKey, spec_flag: bool, org_extra: frozenset[str]) -> bool:
    """Whether the action is dangerous: flagged by its spec, in a D1 default class, or marked by
    the org (D2, keys or patterns). Raises InvalidArgumentError on a malformed key."""
    parsed = parse_key(key)
    return (
        spec_flag
        or dangerous_class(parsed) is not None
        or any(key_matches(p, parsed) for p in org_extra)
    )
