"""Records of the catalog, roles, assignments, teams, user types and decisions."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from helios.authz.domain.blueprints import Blueprint
from helios.authz_rules.permissions import Grant, PermissionSpec

__all__ = [
    "AssignmentRecord",
    "DecisionRecord",
    "GrantSource",
    "HeldGrant",
    "RegisteredPermission",
    "RoleRecord",
    "SubjectFacts",
    "TeamMemberRecord",
    "TeamRecord",
    "UserTypeRecord",
]


@dataclass(frozen=True, slots=True)
class RegisteredPermission:
    """A catalog entry and the service (mTLS identity) that registered it."""

    spec: PermissionSpec
    service: str


@dataclass(frozen=True, slots=True)
class RoleRecord:
    """A tenant role with its current grants and the revision of its last change; `blueprint`
    is None for a custom role."""

    id: uuid.UUID
    org_id: str
    name: str
    description: str
    created_at: dt.datetime
    revision: int
    grants: frozenset[Grant]
    blueprint: Blueprint | None = None
    updated_at: dt.datetime | None = None


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
class TeamRecord:
    """A team of an org; `member_count` counts its current members."""

    id: uuid.UUID
    org_id: str
    name: str
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime
    revision: int
    member_count: int = 0


@dataclass(frozen=True, slots=True)
class TeamMemberRecord:
    """A user's membership of a team."""

    team_id: uuid.UUID
    user_id: str
    added_by: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class UserTypeRecord:
    """A kind of user of an org with the role its users hold by default (None: no role)."""

    id: uuid.UUID
    org_id: str
    name: str
    description: str
    default_role_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime
    revision: int


class GrantSource(enum.Enum):
    """How a user holds a role."""

    ROLE_ASSIGNMENT = "role_assignment"
    USER_TYPE_DEFAULT = "user_type_default"


@dataclass(frozen=True, slots=True)
class HeldGrant:
    """A grant a user holds, with the role that carries it and how the user holds that role:
    an assignment (`assignment_id`) or the default role of their user type (`user_type_id`)."""

    grant: Grant
    role_id: uuid.UUID
    role_name: str
    source: GrantSource = GrantSource.ROLE_ASSIGNMENT
    assignment_id: uuid.UUID | None = None
    user_type_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class SubjectFacts:
    """What the store knows about a user in an org at one revision: held grants, teams, the
    org's extra dangerous patterns (D2), whether it holds the platform root role there. The
    input of every decision."""

    org_id: str
    user_id: str
    revision: int
    held: tuple[HeldGrant, ...]
    team_ids: frozenset[str]
    dangerous_patterns: frozenset[str]
    platform_root: bool = False


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision as recorded for Explain: its inputs, its revision and its answer."""

    id: uuid.UUID
    org_id: str
    revision: int
    created_at: dt.datetime
    kind: str
    principal: dict[str, str]
    permission: str
    resource: dict[str, str]
    ai_narrowing: tuple[str, ...]
    allowed: bool
