"""Reading and setting an org's AI policy (I3); a person in the org decides, never an AI."""

from __future__ import annotations

from google.protobuf.message import Message

from helios.ai_broker.domain.policy import AiPolicy
from helios.ai_broker.ports import Authz, Clock, UnitOfWork
from helios.ai_broker.service.invocations import uuid_field
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
)
from helios.proto.common.v1 import principal_pb2

__all__ = ["POLICY_READ", "POLICY_UPDATE", "AiPolicyService"]

POLICY_READ = "ai.policy.read"
POLICY_UPDATE = "ai.policy.update"
_RESOURCE = "ai.policy"


class AiPolicyService:
    """GetAiPolicy and UpdateAiPolicy (optimistic on the version the caller read)."""

    def __init__(self, uow: UnitOfWork, clock: Clock, authz: Authz) -> None:
        self._uow = uow
        self._clock = clock
        self._authz = authz

    async def get(self, org_id: str, ctx: CallContext) -> AiPolicy:
        """The org's policy (the defaults, version 0, until it sets one), for a person of the
        org holding `ai.policy.read`."""
        org = await self._allowed(ctx, org_id, POLICY_READ)
        async with self._uow() as tx:
            return await tx.ai_policy_of(org)

    async def update(
        self,
        org_id: str,
        require_step_up_to_confirm: bool,
        expected_version: int,
        ctx: CallContext,
        request: Message | None,
    ) -> AiPolicy:
        """Store the org's new policy, audited, for a person holding `ai.policy.update`;
        FailedPreconditionError when the policy changed since `expected_version` was read."""
        if expected_version < 0:
            raise InvalidArgumentError(
                "expected_version is the version read (0 for the defaults)",
                field="expected_version",
            )
        org = await self._allowed(ctx, org_id, POLICY_UPDATE)
        principal = ctx.require_principal()
        policy = AiPolicy(
            require_step_up_to_confirm=require_step_up_to_confirm,
            version=expected_version + 1,
            updated_at=self._clock(),
            updated_by=principal.actor_id,
        )
        async with self._uow() as tx:
            if not await tx.save_ai_policy(org, policy, expected_version):
                raise FailedPreconditionError(
                    "the AI policy changed since it was read: read it again and retry"
                )
            await tx.record(
                Change(
                    action=POLICY_UPDATE,
                    resource_type=_RESOURCE,
                    resource_id=org,
                    org_id=org,
                    request=request,
                    diff={
                        "require_step_up_to_confirm": require_step_up_to_confirm,
                        "version": policy.version,
                    },
                ),
                ctx,
            )
        return policy

    async def _allowed(self, ctx: CallContext, org_id: str, permission: str) -> str:
        principal = ctx.require_principal()
        if principal.actor_type != principal_pb2.ACTOR_TYPE_USER:
            raise PermissionDeniedError("only a person may see or set the org's AI policy")
        if not principal.org_id or (org_id and org_id != principal.org_id):
            raise PermissionDeniedError("the AI policy of another org is out of reach")
        org = str(uuid_field(principal.org_id, "org_id"))
        decision = await self._authz.check(principal, permission, org_id=org)
        if not decision.allowed:
            raise PermissionDeniedError(f"{permission} is not granted to you in this org")
        return org
