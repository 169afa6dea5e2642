"""The action registry (I5): services register the actions an AI may ask the broker to perform;
people and their AIs list them with the org's dangerous flags (D1, D2).

A service registers only as itself (its mTLS identity, no principal), only actions of its own
modules, and its whole set at once: what it no longer declares is removed. ListActions needs
`ai.action.list` in the caller's own org, as authz decides for its principal (a person, or an
AI acting as its delegating user); like BuildPrompt, the AI session's narrowing is not applied
to reading the registry, and an AI sees only ai_allowed actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from helios.ai_broker.domain.actions import (
    ActionDefinition,
    definition_of,
    is_dangerous,
    may_register,
    validate_action_set,
)
from helios.ai_broker.domain.model import Action
from helios.ai_broker.ports import Authz, Clock, UnitOfWork
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import AlreadyExistsError, InvalidArgumentError, PermissionDeniedError
from helios.proto.common.v1 import principal_pb2

__all__ = ["ACTION_LIST", "ActionPage", "Registration", "RegistryService"]

ACTION_LIST = "ai.action.list"
DEFAULT_PAGE = 200
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registration changed, each list ordered by name."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActionPage:
    """Registered actions, each with its dangerous flag for the org; `next_token` is '' on the
    last page."""

    actions: list[tuple[Action, bool]]
    next_token: str


class RegistryService:
    """RegisterActions and ListActions."""

    def __init__(
        self, uow: UnitOfWork, clock: Clock, authz: Authz, product_services: Collection[str]
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._authz = authz
        self._product_services = frozenset(product_services)

    async def register(
        self,
        service: str,
        definitions: Sequence[ActionDefinition],
        ctx: CallContext,
        request: Message | None,
    ) -> Registration:
        """Replace `service`'s actions with `definitions` in one transaction; idempotent (the
        same set changes and audits nothing). Raises PermissionDeniedError unless the caller is
        that service itself (mTLS identity, no principal) and a Helios service or a product
        service the broker calls (its `action_targets`); InvalidArgumentError (naming the
        field) for a definition the rules refuse; AlreadyExistsError for a name another service
        registered."""
        if ctx.principal is not None or not ctx.caller:
            raise PermissionDeniedError("only services register actions, as themselves")
        if service != ctx.caller:
            raise PermissionDeniedError(
                f"service {service!r} does not match the caller's identity {ctx.caller!r}"
            )
        if not may_register(service, self._product_services):
            raise PermissionDeniedError(
                f"{service} is not a service the broker calls (HELIOS_ACTION_TARGETS)"
            )
        wanted = validate_action_set(service, definitions)
        now = self._clock()
        async with self._uow() as tx:
            current = {a.name: a for a in await tx.actions_of_service(service)}
            added: list[str] = []
            changed: list[str] = []
            for definition in wanted:
                known = current.get(definition.name)
                if known is not None and definition_of(known) == definition:
                    continue
                if known is None:
                    other = await tx.action_by_name(definition.name)
                    if other is not None:
                        raise AlreadyExistsError(
                            f"action {definition.name} is registered by {other.service}",
                            field="actions",
                        )
                (added if known is None else changed).append(definition.name)
                await tx.save_action(_action(service, definition, now))
            removed = sorted(set(current) - {d.name for d in wanted})
            await tx.remove_actions(removed)
            result = Registration(tuple(added), tuple(changed), tuple(removed))
            if added or changed or removed:
                await tx.record(
                    Change(
                        action="ai.action.register",
                        resource_type="ai.action",
                        resource_id=service,
                        request=request,
                        diff={"added": added, "changed": changed, "removed": removed},
                    ),
                    ctx,
                )
        return result

    async def page(
        self, org_id: str, ai_allowed_only: bool, page_size: int, page_token: str, ctx: CallContext
    ) -> ActionPage:
        """A page of actions ordered by name, each with its dangerous flag in the org (from
        authz, read when asked: a D2 mark shows at once). Only ai_allowed ones when asked, and
        always for an AI. Raises UnauthenticatedError without a principal, PermissionDeniedError
        for another org or without `ai.action.list`, InvalidArgumentError for a negative
        page size."""
        principal = ctx.require_principal()
        if not principal.org_id:
            raise PermissionDeniedError("the caller belongs to no org")
        org = org_id or principal.org_id
        if org != principal.org_id:
            raise PermissionDeniedError("actions are listed for the caller's own org only")
        if page_size < 0:
            raise InvalidArgumentError("page_size must not be negative", field="page_size")
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        decision = await self._authz.check(principal, ACTION_LIST, org_id=org)
        if not decision.allowed:
            raise PermissionDeniedError(f"{ACTION_LIST} is not granted to you in this org")
        only_ai = ai_allowed_only or principal.actor_type == principal_pb2.ACTOR_TYPE_AI
        async with self._uow() as tx:
            found = await tx.actions_page(page_token, limit + 1, only_ai)
        listed = found[:limit]
        patterns = await self._authz.dangerous_patterns(org) if listed else frozenset[str]()
        return ActionPage(
            actions=[(a, is_dangerous(a.permission, patterns)) for a in listed],
            next_token=listed[-1].name if len(found) > limit else "",
        )


def _action(service: str, definition: ActionDefinition, now: dt.datetime) -> Action:
    return Action(
        name=definition.name,
        service=service,
        description=definition.description,
        permission=definition.permission,
        input_schema=definition.input_schema,
        target_method=definition.target_method,
        ai_allowed=definition.ai_allowed,
        summary_template=definition.summary_template,
        updated_at=now,
    )
