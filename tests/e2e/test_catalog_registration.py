"""Every service registers the permissions it declares in code with authz when it starts (Z2)."""

from __future__ import annotations

import asyncio
import time

import grpc

from helios.ai_broker.domain.permissions import AI_BROKER_PERMISSIONS
from helios.audit.domain.permissions import AUDIT_PERMISSIONS
from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.devstack.stack import GRPC_SERVICES, Stack
from helios.identity.domain.permissions import IDENTITY_PERMISSIONS
from helios.kernel.clients import secure_channel
from helios.keyvault.domain.permissions import KEYVAULT_PERMISSIONS
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc

DECLARED: dict[str, set[str]] = {
    "identity": {p.key for p in IDENTITY_PERMISSIONS},
    "audit": {p.key for p in AUDIT_PERMISSIONS},
    "keyvault": {p.key for p in KEYVAULT_PERMISSIONS},
    "ai-broker": {p.key for p in AI_BROKER_PERMISSIONS},
    "authz": {str(p.key) for p in AUTHZ_PERMISSIONS},
}
DEADLINE_SECONDS = 30.0
# A Helios service identity may read the catalog with no principal and no org (the defaults).
READER = "gateway"


async def _registered(stub: authz_pb2_grpc.AuthzServiceAsyncStub, service: str) -> list[str]:
    keys: list[str] = []
    token = ""
    while True:
        reply = await stub.ListPermissions(
            authz_pb2.ListPermissionsRequest(service=service, page_token=token), timeout=5
        )
        assert all(p.service == service for p in reply.permissions)
        keys.extend(p.key for p in reply.permissions)
        token = reply.next_page_token
        if not token:
            return keys


async def _catalog_once_complete(stack: Stack) -> dict[str, list[str]]:
    """Each service's registered keys, polled until every declaration is in or the deadline."""
    target = f"localhost:{stack.ports['authz']}"
    deadline = time.monotonic() + DEADLINE_SECONDS
    async with secure_channel(target, stack.certs(READER)) as channel:
        stub = authz_pb2_grpc.AuthzServiceStub(channel)
        while True:
            found: dict[str, list[str]] = {}
            try:
                for service in DECLARED:
                    found[service] = await _registered(stub, service)
            except grpc.aio.AioRpcError:
                found = {}
            if found and all(DECLARED[s] <= set(found[s]) for s in DECLARED):
                return found
            if time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)


def test_z2_every_service_registers_its_catalog_at_start(stack: Stack) -> None:
    """Z2: identity, audit, keyvault and ai-broker register over gRPC as their mTLS identity,
    authz in-process; the catalog then holds exactly what each declares, under its name."""
    assert set(DECLARED) == {name for name, _, _ in GRPC_SERVICES}
    found = asyncio.run(_catalog_once_complete(stack))
    for service, declared in DECLARED.items():
        registered = found.get(service, [])
        assert len(registered) == len(set(registered)), service
        assert set(registered) == declared, service
