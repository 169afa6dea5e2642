"""AI policy RPCs: GetAiPolicy, UpdateAiPolicy, and their conversion."""

from __future__ import annotations

from helios.ai_broker.domain.policy import AiPolicy
from helios.ai_broker.rpc.context import Context
from helios.ai_broker.service.bundle import BrokerServices
from helios.kernel.context import current_call
from helios.proto.ai_broker.v1 import ai_broker_pb2

__all__ = ["PolicyHandlers", "policy_to_proto"]


def policy_to_proto(policy: AiPolicy) -> ai_broker_pb2.AiPolicy:
    """The policy with its version; no update time while the org has the defaults."""
    message = ai_broker_pb2.AiPolicy(
        require_step_up_to_confirm=policy.require_step_up_to_confirm, version=policy.version
    )
    if policy.updated_at is not None:
        message.update_time.FromDatetime(policy.updated_at)
    return message


class PolicyHandlers:
    """Thin handlers over AiPolicyService."""

    _services: BrokerServices

    async def GetAiPolicy(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.GetAiPolicyRequest, context: Context
    ) -> ai_broker_pb2.GetAiPolicyResponse:
        policy = await self._services.policies.get(request.org_id, current_call())
        return ai_broker_pb2.GetAiPolicyResponse(policy=policy_to_proto(policy))

    async def UpdateAiPolicy(  # noqa: N802 - gRPC method name
        self, request: ai_broker_pb2.UpdateAiPolicyRequest, context: Context
    ) -> ai_broker_pb2.UpdateAiPolicyResponse:
        policy = await self._services.policies.update(
            request.org_id,
            request.policy.require_step_up_to_confirm,
            request.expected_version,
            current_call(),
            request,
        )
        return ai_broker_pb2.UpdateAiPolicyResponse(policy=policy_to_proto(policy))
