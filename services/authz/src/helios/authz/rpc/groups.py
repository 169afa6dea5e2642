"""Team, membership and user-type RPCs."""

from __future__ import annotations

from typing import Any

import grpc

from helios.authz.rpc.convert import member_to_proto, team_to_proto, user_type_to_proto
from helios.authz.service.teams import TeamService
from helios.authz.service.user_types import UserTypeService
from helios.kernel.context import current_call
from helios.proto.authz.v1 import authz_pb2

__all__ = ["GroupHandlers"]

Context = grpc.aio.ServicerContext[Any, Any]


class GroupHandlers:
    """Thin handlers over TeamService and UserTypeService."""

    _teams: TeamService
    _user_types: UserTypeService

    async def CreateTeam(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.CreateTeamRequest, context: Context
    ) -> authz_pb2.CreateTeamResponse:
        team = await self._teams.create(
            current_call(), request.org_id, request.name, request.description
        )
        return authz_pb2.CreateTeamResponse(team=team_to_proto(team), revision=team.revision)

    async def GetTeam(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.GetTeamRequest, context: Context
    ) -> authz_pb2.GetTeamResponse:
        team, revision = await self._teams.get(current_call(), request.org_id, request.team_id)
        return authz_pb2.GetTeamResponse(team=team_to_proto(team), revision=revision)

    async def ListTeams(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.ListTeamsRequest, context: Context
    ) -> authz_pb2.ListTeamsResponse:
        teams, token, revision = await self._teams.page(
            current_call(),
            request.org_id,
            request.member_user_id,
            request.page_size,
            request.page_token,
        )
        return authz_pb2.ListTeamsResponse(
            teams=[team_to_proto(t) for t in teams], next_page_token=token, revision=revision
        )

    async def UpdateTeam(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.UpdateTeamRequest, context: Context
    ) -> authz_pb2.UpdateTeamResponse:
        team = await self._teams.update(
            current_call(),
            request.org_id,
            request.team_id,
            request.name if request.HasField("name") else None,
            request.description if request.HasField("description") else None,
        )
        return authz_pb2.UpdateTeamResponse(team=team_to_proto(team), revision=team.revision)

    async def DeleteTeam(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.DeleteTeamRequest, context: Context
    ) -> authz_pb2.DeleteTeamResponse:
        revision = await self._teams.delete(current_call(), request.org_id, request.team_id)
        return authz_pb2.DeleteTeamResponse(revision=revision)

    async def AddTeamMember(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.AddTeamMemberRequest, context: Context
    ) -> authz_pb2.AddTeamMemberResponse:
        member, revision = await self._teams.add_member(
            current_call(), request.org_id, request.team_id, request.user_id
        )
        return authz_pb2.AddTeamMemberResponse(member=member_to_proto(member), revision=revision)

    async def RemoveTeamMember(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.RemoveTeamMemberRequest, context: Context
    ) -> authz_pb2.RemoveTeamMemberResponse:
        revision = await self._teams.remove_member(
            current_call(), request.org_id, request.team_id, request.user_id
        )
        return authz_pb2.RemoveTeamMemberResponse(revision=revision)

    async def ListTeamMembers(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.ListTeamMembersRequest, context: Context
    ) -> authz_pb2.ListTeamMembersResponse:
        members, token, revision = await self._teams.members(
            current_call(), request.org_id, request.team_id, request.page_size, request.page_token
        )
        return authz_pb2.ListTeamMembersResponse(
            members=[member_to_proto(m) for m in members], next_page_token=token, revision=revision
        )

    async def CreateUserType(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.CreateUserTypeRequest, context: Context
    ) -> authz_pb2.CreateUserTypeResponse:
        created = await self._user_types.create(
            current_call(),
            request.org_id,
            request.name,
            request.description,
            request.default_role_id,
        )
        return authz_pb2.CreateUserTypeResponse(
            user_type=user_type_to_proto(created), revision=created.revision
        )

    async def GetUserType(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.GetUserTypeRequest, context: Context
    ) -> authz_pb2.GetUserTypeResponse:
        found, revision = await self._user_types.get(
            current_call(), request.org_id, request.user_type_id
        )
        return authz_pb2.GetUserTypeResponse(user_type=user_type_to_proto(found), revision=revision)

    async def ListUserTypes(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.ListUserTypesRequest, context: Context
    ) -> authz_pb2.ListUserTypesResponse:
        found, token, revision = await self._user_types.page(
            current_call(), request.org_id, request.page_size, request.page_token
        )
        return authz_pb2.ListUserTypesResponse(
            user_types=[user_type_to_proto(u) for u in found],
            next_page_token=token,
            revision=revision,
        )

    async def UpdateUserType(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.UpdateUserTypeRequest, context: Context
    ) -> authz_pb2.UpdateUserTypeResponse:
        updated = await self._user_types.update(
            current_call(),
            request.org_id,
            request.user_type_id,
            request.name if request.HasField("name") else None,
            request.description if request.HasField("description") else None,
            request.default_role_id if request.HasField("default_role_id") else None,
        )
        return authz_pb2.UpdateUserTypeResponse(
            user_type=user_type_to_proto(updated), revision=updated.revision
        )

    async def DeleteUserType(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.DeleteUserTypeRequest, context: Context
    ) -> authz_pb2.DeleteUserTypeResponse:
        revision = await self._user_types.delete(
            current_call(), request.org_id, request.user_type_id
        )
        return authz_pb2.DeleteUserTypeResponse(revision=revision)

    async def AssignUserType(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.AssignUserTypeRequest, context: Context
    ) -> authz_pb2.AssignUserTypeResponse:
        user_type_id, revision = await self._user_types.assign(
            current_call(), request.org_id, request.user_id, request.user_type_id
        )
        return authz_pb2.AssignUserTypeResponse(user_type_id=user_type_id, revision=revision)
