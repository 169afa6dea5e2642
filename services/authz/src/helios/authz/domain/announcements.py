"""NATS subjects of authz's policy announcements (what replicas and local evaluators listen to)."""

from __future__ import annotations

__all__ = ["CATALOG_SUBJECT", "POLICY_SUBJECT_PREFIX"]

POLICY_SUBJECT_PREFIX = "authz.policy.changed."
"""PolicyChanged of org X is published on `authz.policy.changed.X`."""

CATALOG_SUBJECT = "authz.catalog.changed"
"""PolicyChanged of kind CATALOG (the platform-wide permission catalog)."""
