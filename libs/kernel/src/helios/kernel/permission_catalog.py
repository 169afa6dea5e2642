"""A service's permission catalog: the keys its RPCs require, and registering it with authz (Z2)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from helios.kernel.clients import call_metadata
from helios.kernel.server import BackgroundTask
from helios.kernel.start_registration import CALL_TIMEOUT_SECONDS, start_registration_task
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.options.v1 import options_pb2

__all__ = ["registration_task", "required_permissions"]

log = logging.getLogger(__name__)

_SCOPE_SUFFIXES = frozenset({"own", "team", "any"})


def required_permissions(service: ServiceDescriptor) -> dict[str, bool]:
    """The permission keys `service`'s RPCs require (public RPCs skipped, a `:own` / `:team` /
    `:any` suffix stripped), each with the dangerous flag its method options declare. Raises
    ValueError for a non-public RPC without a permission, an unknown suffix, or two RPCs that
    require one key with different dangerous flags."""
    found: dict[str, bool] = {}
    for method in service.methods:
        option = method.GetOptions().Extensions[options_pb2.authz]
        if option.public:
            continue
        key, sep, suffix = option.permission.partition(":")
        if not key or (sep and suffix not in _SCOPE_SUFFIXES):
            raise ValueError(
                f"{method.full_name}: permission {option.permission!r} must be"
                " <module>.<entity>.<verb>, optionally with :own, :team or :any"
            )
        if found.get(key, option.dangerous) is not option.dangerous:
            raise ValueError(f"{method.full_name}: {key} is dangerous in one RPC and not another")
        found[key] = option.dangerous
    return found


def registration_task(
    name: str,
    definitions: Sequence[authz_pb2.PermissionDefinition],
    target: str,
    certs: CertFiles,
) -> BackgroundTask:
    """A background task that registers `definitions` as service `name` with authz at `target`
    (host:port) over mTLS with `certs`, whose identity must be `name`. Registering is idempotent
    on authz's side, so it runs at every start; it is retried until authz answers and ends once
    done. A refusal (ALREADY_EXISTS: a key registered differently; INVALID_ARGUMENT; or
    PERMISSION_DENIED) is a deployment bug: logged as an error once, not retried."""
    request = authz_pb2.RegisterPermissionsRequest(service=name, permissions=definitions)

    async def call(channel: grpc.aio.Channel) -> authz_pb2.RegisterPermissionsResponse:
        reply: authz_pb2.RegisterPermissionsResponse = await authz_pb2_grpc.AuthzServiceStub(
            channel
        ).RegisterPermissions(request, timeout=CALL_TIMEOUT_SECONDS, metadata=call_metadata())
        return reply

    return start_registration_task(
        "permission catalog",
        name,
        target,
        certs,
        call,
        refused="authz refused the permission catalog: a deployment bug (a key changed after it"
        " was registered, or declared by another service, or a bad declaration); fix the"
        " declarations, not retrying",
        registered=lambda reply: {"added": len(reply.added_keys)},
        log=log,
    )
