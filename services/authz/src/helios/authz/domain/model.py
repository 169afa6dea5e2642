"""Records of the catalog, roles and assignments as the use cases see them."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from helios.authz.domain.permissions import Grant, PermissionSpec

__all__ = ["AssignmentRecord", "HeldGrant", "RegisteredPermission", "RoleRecord"]


@dataclass(frozen=True, slots=True)
class RegisteredPermission:
    """A catalog entry and the service (mTLS identity) that registered it."""

    spec: PermissionSpec
    service: str


@dataclass(frozen=True, slots=True)
class RoleRecord:
    """A tenant role with its current grants and the revision of its last change."""

    id: uuid.UUID
    org_id: str
    name: str
    description: str
    created_at: dt.datetime
    revision: int
    grants: frozenset[Grant]


@dataclass(frozen=True, slots=True)
class AssignmentRecord:
    """A role held by a user in an org since `revision`."""

    id: uuid.UUID
    org_id: str
    user_id: str
    role_id: uuid.UUID
    granted_by: str
    created_at: dt.datetime
    revision: int


@dataclass(frozen=True, slots=True)
class HeldGrant:
    """A grant a user holds now, with the role and assignment that give it."""

    grant: Grant
    role_id: uuid.UUID
    role_name: str
    assignment_id: uuid.UUID
