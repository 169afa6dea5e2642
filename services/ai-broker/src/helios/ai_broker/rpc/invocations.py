"""Invocation RPCs: Invoke, ConfirmInvocation, RejectInvocation, GetInvocation, ReplayCheck, and
their conversions."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from helios.ai_broker.domain.hashing import whole_numbers
from helios.ai_broker.domain.model import Invocation, InvocationState
from helios.ai_broker.rpc.context import Context
from helios.ai_broker.service.bundle import BrokerServices
from helios.kernel.context import current_call
from helios.proto.ai_broker.v1 import ai_broker_pb2

__all__ = ["InvocationHandlers", "invocation_to_proto"]

_STATES: dict[InvocationState, ai_broker_pb2.InvocationState.ValueType] = {
    InvocationState.PENDING_CONFIRMATION: ai_broker_pb2.INVOCATION_STATE_PENDING_CONFIRMATION,
    InvocationState.RUNNING: ai_broker_pb2.INVOCATION_STATE_RUNNING,
    InvocationState.SUCCEEDED: ai_broker_pb2.INVOCATION_STATE_SUCCEEDED,
    InvocationState.FAILED: ai_broker_pb2.INVOCATION_STATE_FAILED,
    InvocationState.REJECTED: ai_broker_pb2.INVOCATION_STATE_REJECTED,
    InvocationState.EXPIRED: ai_broker_pb2.INVOCATION_STATE_EXPIRED,
}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _confirmation(invocation: Invocation, nonce: str = "") -> ai_broker_pb2.ConfirmationRequired:
    confirmation = ai_broker_pb2.ConfirmationRequired(
        confirmation_id=nonce, summary=invocation.summary
    )
    if invocation.confirmation_expires_at is not None:
        confirmation.expires_at.FromDatetime(invocation.confirmation_expires_at)
    return confirmation


def invocation_to_proto(invocation: Invocation) -> ai_broker_pb2.Invocation:
    """The invocation as served; its confirmation carries the summary and deadline, never the
    nonce (only its hash is kept)."""
    message = ai_broker_pb2.Invocation(
        invocation_id=str(invocation.id),
        org_id=invocation.org_id,
        ai_session_id=str(invocation.ai_session_id),
        user_id=invocation.user_id,
        action=invocation.action,
        state=_STATES[invocation.state],
        input=_struct(invocation.input),
        input_hash=invocation.input_hash,
        output_hash=invocation.output_hash,
        dangerous=invocation.dangerous,
        step_up_required=invocation.step_up_required,
        decision_id=invocation.decision_id,
        decided_by=invocation.decided_by,
        error_code=invocation.error_code,
        error_message=invocation.error_message,
    )
    if invocation.output is not None:
        message.output.CopyFrom(_struct(invocation.output))
    if invocation.dangerous:
        message.confirmation.CopyFrom(_confirmation(invocation))
    message.create_time.FromDatetime(invocation.created_at)
    if invocation.completed_at is not None:
        message.complete_time.FromDatetime(invocation.completed_at)
    return message


class InvocationHandlers:
    """Thin handlers over InvocationService, ConfirmationService and ReplayService."""

    _services: BrokerServices

    async def Invoke(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.InvokeRequest, context: Context
    ) -> ai_broker_pb2.InvokeResponse:
        result = await self._services.invocations.invoke(
            request.org_id,
            request.action,
            whole_numbers(json_format.MessageToDict(request.input)),
            request.system_prompt_hash,
            current_call(),
            request,
        )
        invocation = result.invocation
        response = ai_broker_pb2.InvokeResponse(
            invocation_id=str(invocation.id),
            input_hash=invocation.input_hash,
            output_hash=invocation.output_hash,
            decision_id=invocation.decision_id,
        )
        if result.confirmation_id:
            response.confirmation_required.CopyFrom(
                _confirmation(invocation, result.confirmation_id)
            )
        else:
            response.output.CopyFrom(_struct(invocation.output or {}))
        return response

    async def ConfirmInvocation(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.ConfirmInvocationRequest, context: Context
    ) -> ai_broker_pb2.ConfirmInvocationResponse:
        invocation = await self._services.confirmations.confirm(
            request.org_id,
            request.invocation_id,
            request.confirmation_id,
            request.input_hash,
            request.step_up_token,
            current_call(),
            request,
        )
        return ai_broker_pb2.ConfirmInvocationResponse(invocation=invocation_to_proto(invocation))

    async def RejectInvocation(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.RejectInvocationRequest, context: Context
    ) -> ai_broker_pb2.RejectInvocationResponse:
        invocation = await self._services.confirmations.reject(
            request.org_id,
            request.invocation_id,
            request.confirmation_id,
            request.reason,
            current_call(),
            request,
        )
        return ai_broker_pb2.RejectInvocationResponse(invocation=invocation_to_proto(invocation))

    async def GetInvocation(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.GetInvocationRequest, context: Context
    ) -> ai_broker_pb2.GetInvocationResponse:
        invocation = await self._services.invocations.get(
            request.org_id, request.invocation_id, current_call()
        )
        return ai_broker_pb2.GetInvocationResponse(invocation=invocation_to_proto(invocation))

    async def ReplayCheck(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.ReplayCheckRequest, context: Context
    ) -> ai_broker_pb2.ReplayCheckResponse:
        result = await self._services.replay.replay_check(
            request.org_id, request.invocation_id, current_call(), request
        )
        return ai_broker_pb2.ReplayCheckResponse(
            recorded_output_hash=result.recorded_output_hash,
            replayed_output_hash=result.replayed_output_hash,
            matches=result.matches,
        )
