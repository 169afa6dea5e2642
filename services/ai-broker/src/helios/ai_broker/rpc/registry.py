"""Action registry RPCs: RegisterActions, ListActions, and their conversions."""

from __future__ import annotations

from google.protobuf import json_format, struct_pb2

from helios.ai_broker.domain.actions import ActionDefinition
from helios.ai_broker.domain.hashing import whole_numbers
from helios.ai_broker.domain.model import Action
from helios.ai_broker.rpc.context import Context
from helios.ai_broker.service.bundle import BrokerServices
from helios.kernel.context import current_call
from helios.proto.ai_broker.v1 import ai_broker_pb2

__all__ = ["RegistryHandlers", "action_to_proto", "definition_from_proto"]


def definition_from_proto(definition: ai_broker_pb2.ActionDefinition) -> ActionDefinition:
    """The domain definition of a registered action (the schema as plain JSON)."""
    return ActionDefinition(
        name=definition.name,
        description=definition.description,
        permission=definition.permission,
        input_schema=whole_numbers(json_format.MessageToDict(definition.input_schema)),
        target_method=definition.target_method,
        ai_allowed=definition.ai_allowed,
        summary_template=definition.summary_template,
    )


def action_to_proto(action: Action, dangerous: bool) -> ai_broker_pb2.Action:
    """The action as served, with its dangerous flag for the org."""
    schema = struct_pb2.Struct()
    schema.update(action.input_schema)
    served = ai_broker_pb2.Action(
        definition=ai_broker_pb2.ActionDefinition(
            name=action.name,
            description=action.description,
            permission=action.permission,
            input_schema=schema,
            target_method=action.target_method,
            ai_allowed=action.ai_allowed,
            summary_template=action.summary_template,
        ),
        service=action.service,
        dangerous=dangerous,
    )
    served.update_time.FromDatetime(action.updated_at)
    return served


class RegistryHandlers:
    """Thin handlers over RegistryService."""

    _services: BrokerServices

    async def RegisterActions(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.RegisterActionsRequest, context: Context
    ) -> ai_broker_pb2.RegisterActionsResponse:
        registration = await self._services.registry.register(
            request.service,
            [definition_from_proto(d) for d in request.actions],
            current_call(),
            request,
        )
        return ai_broker_pb2.RegisterActionsResponse(
            added_names=registration.added,
            changed_names=registration.changed,
            removed_names=registration.removed,
        )

    async def ListActions(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.ListActionsRequest, context: Context
    ) -> ai_broker_pb2.ListActionsResponse:
        page = await self._services.registry.page(
            request.org_id,
            request.ai_allowed_only,
            request.page_size,
            request.page_token,
            current_call(),
        )
        return ai_broker_pb2.ListActionsResponse(
            actions=[action_to_proto(a, dangerous) for a, dangerous in page.actions],
            next_page_token=page.next_token,
        )
