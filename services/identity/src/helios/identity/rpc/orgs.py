"""Org RPCs: CreateOrg, AddOrgMember, RemoveOrgMember, ListOrgMembers, UpdateOrgAuthPolicy,
UnlockUser."""

from __future__ import annotations

from helios.identity.domain.model import OrgAuthPolicy
from helios.identity.rpc.context import Context
from helios.identity.rpc.convert import member_to_proto, org_to_proto
from helios.identity.service.bundle import IdentityServices
from helios.identity.service.org_access import uuid_field
from helios.kernel.context import current_call
from helios.proto.identity.v1 import identity_pb2

__all__ = ["OrgHandlers"]


class OrgHandlers:
    """Thin handlers over OrgService and MemberService."""

    _services: IdentityServices

    async def CreateOrg(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.CreateOrgRequest, context: Context
    ) -> identity_pb2.CreateOrgResponse:
        org = await self._services.orgs.create_org(
            request.slug,
            request.name,
            uuid_field(request.owner_user_id, "owner_user_id"),
            current_call(),
            request,
        )
        return identity_pb2.CreateOrgResponse(org=org_to_proto(org))

    async def AddOrgMember(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.AddOrgMemberRequest, context: Context
    ) -> identity_pb2.AddOrgMemberResponse:
        membership, user = await self._services.members.add(
            request.org_id, request.email, request.user_type, current_call(), request
        )
        return identity_pb2.AddOrgMemberResponse(member=member_to_proto(membership, user))

    async def RemoveOrgMember(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.RemoveOrgMemberRequest, context: Context
    ) -> identity_pb2.RemoveOrgMemberResponse:
        await self._services.members.remove(
            request.org_id, request.user_id, current_call(), request
        )
        return identity_pb2.RemoveOrgMemberResponse()

    async def ListOrgMembers(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.ListOrgMembersRequest, context: Context
    ) -> identity_pb2.ListOrgMembersResponse:
        page, next_token = await self._services.members.page(
            request.org_id, request.page_size, request.page_token, current_call()
        )
        return identity_pb2.ListOrgMembersResponse(
            members=[member_to_proto(membership, user) for membership, user in page],
            next_page_token=next_token,
        )

    async def UpdateOrgAuthPolicy(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.UpdateOrgAuthPolicyRequest, context: Context
    ) -> identity_pb2.UpdateOrgAuthPolicyResponse:
        policy = (
            OrgAuthPolicy(
                require_mfa=request.auth_policy.require_mfa,
                magic_link_enabled=request.auth_policy.magic_link_enabled,
            )
            if request.HasField("auth_policy")
            else None
        )
        org = await self._services.orgs.update_auth_policy(
            request.org_id, policy, current_call(), request
        )
        return identity_pb2.UpdateOrgAuthPolicyResponse(org=org_to_proto(org))

    async def UnlockUser(  # noqa: N802 - gRPC method name
        self, request: identity_pb2.UnlockUserRequest, context: Context
    ) -> identity_pb2.UnlockUserResponse:
        lifted = await self._services.orgs.unlock_member(request.email, current_call(), request)
        return identity_pb2.UnlockUserResponse(lifted=lifted)
