"""A service's permission catalog: the keys its RPCs require, and registering it with authz (Z2)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.retrying import retry_until_done
from helios.kernel.server import BackgroundTask
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.options.v1 import options_pb2

__all__ = ["registration_task", "required_permissions"]

log = logging.getLogger(__name__)

_SCOPE_SUFFIXES = frozenset({"own", "team", "any"})
_CALL_TIMEOUT_SECONDS = 10.0
# Refusals that say the declarations or the deployment are wrong: asking again cannot help.
_DEPLOYMENT_BUGS = frozenset(
    {
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


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

    async def attempt() -> None:
        async with secure_channel(target, certs) as channel:
            stub = authz_pb2_grpc.AuthzServiceStub(channel)
            try:
                reply = await stub.RegisterPermissions(
                    request, timeout=_CALL_TIMEOUT_SECONDS, metadata=call_metadata()
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _DEPLOYMENT_BUGS:
                    raise
                log.error(
                    "authz refused the permission catalog: a deployment bug (a key changed"
                    " after it was registered, or declared by another service, or a bad"
                    " declaration); fix the declarations, not retrying",
                    extra={"service": name, "grpc_code": exc.code().name, "error": exc.details()},
                )
                return
        log.info(
            "permission catalog registered",
            extra={"service": name, "added": len(reply.added_keys)},
        )

    async def run(stop: asyncio.Event) -> None:
        await retry_until_done("registering the permission catalog", attempt, stop, log)

    return run
