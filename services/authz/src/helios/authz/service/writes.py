"""What every administrative write shares: input checks, paging, the cache announcement."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import replace

from helios.authz.ports import AuthzTransaction
from helios.authz.service.access import Actor
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError
from helios.proto.authz.v1 import events_pb2

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "announce",
    "description",
    "name",
    "page_size",
    "record_write",
    "user_id",
    "uuid_of",
]

DEFAULT_PAGE = 100
MAX_PAGE = 500


def uuid_of(value: str, field: str) -> uuid.UUID:
    """`value` as a UUID, or InvalidArgumentError naming the field."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgumentError(f"{field} is not a UUID", field=field) from None


def user_id(value: str) -> str:
    """A user id of 1-64 characters."""
    if not value or len(value) > 64:
        raise InvalidArgumentError("user_id must be 1-64 characters", field="user_id")
    return value


def name(value: str) -> str:
    """A trimmed display name of 1-100 characters on one line."""
    trimmed = value.strip()
    if not trimmed or len(trimmed) > 100 or "\n" in trimmed:
        raise InvalidArgumentError("name must be 1-100 characters on one line", field="name")
    return trimmed


def description(value: str) -> str:
    """A one-line description of at most 500 characters."""
    if "\n" in value or len(value) > 500:
        raise InvalidArgumentError(
            "description must be one line of at most 500 characters", field="description"
        )
    return value


def page_size(requested: int) -> int:
    """The page size to serve: the default for 0, at most MAX_PAGE; negative is refused."""
    if requested < 0:
        raise InvalidArgumentError("page_size must not be negative", field="page_size")
    return min(requested or DEFAULT_PAGE, MAX_PAGE)


async def record_write(
    tx: AuthzTransaction,
    ctx: CallContext,
    actor: Actor,
    revision: int,
    kind: events_pb2.PolicyChangeKind.ValueType,
    change: Change,
    user_ids: Collection[str] = (),
) -> None:
    """The two rows every policy write adds to its transaction: the audit event (in the actor's
    org, with the deciding decision id and the revision in its diff) and the announcement."""
    await tx.record(
        replace(
            change,
            org_id=actor.org_id,
            decision_id=actor.decision_id,
            diff={**change.diff, "revision": revision},
        ),
        ctx,
    )
    await announce(tx, actor, revision, kind, user_ids)


async def announce(
    tx: AuthzTransaction,
    actor: Actor,
    revision: int,
    kind: events_pb2.PolicyChangeKind.ValueType,
    user_ids: Collection[str] = (),
) -> None:
    """Tell every replica and local evaluator the org is at `revision` (commits with `tx`);
    `user_ids` narrows who is affected (empty: possibly everyone in the org)."""
    await tx.announce(
        events_pb2.PolicyChanged(
            metadata=events_pb2.EventMetadata(
                org_id=actor.org_id, revision=revision, decision_id=actor.decision_id
            ),
            kind=kind,
            affected_user_ids=sorted(user_ids),
        )
    )
