"""The ActionTargets port over gRPC: an action's method on the service that registered it, called
over mutual TLS as the broker with a broker-signed AI principal. The request and response types
come from the target's server reflection (every Helios-style service serves it), else from the
protos compiled into this process; they are learned once per method."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
)
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2

from helios.ai_broker.domain.hashing import whole_numbers
from helios.ai_broker.domain.invocations import TargetCallError
from helios.ai_broker.ports import PrincipalSigner
from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.tls import CertFiles
from helios.proto.common.v1 import principal_pb2

__all__ = ["GrpcActionTargets"]

_REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
_FileProtos = dict[str, descriptor_pb2.FileDescriptorProto]


@dataclass(frozen=True, slots=True)
class _MethodTypes:
    request: type[Message]
    response: type[Message]


def _full_name(method: str) -> str:
    """`/package.Service/Method` as the descriptor name `package.Service.Method`."""
    _, service, name = method.split("/") if method.count("/") == 2 else ("", "", "")
    if not service or not name:
        raise TargetCallError("FAILED_PRECONDITION", f"malformed target method {method!r}")
    return f"{service}.{name}"


class _Reflection:
    """One reflection stream: the files that define a symbol, with their dependencies."""

    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._call = channel.stream_stream(
            _REFLECTION,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )(timeout=timeout)
        self._files: _FileProtos = {}

    async def _ask(self, request: reflection_pb2.ServerReflectionRequest) -> bool:
        await self._call.write(request)
        response = await self._call.read()
        if not isinstance(response, reflection_pb2.ServerReflectionResponse):
            raise LookupError("the reflection stream ended early")
        if response.HasField("error_response"):
            return False
        for blob in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
            self._files.setdefault(proto.name, proto)
        return True

    async def files_of(self, symbol: str) -> _FileProtos:
        """The files defining `symbol` and everything they import (a dependency the target does
        not serve is taken from this process's protos); raises LookupError when the target
        does not know the symbol."""
        if not await self._ask(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
        ):
            raise LookupError(f"the target does not serve {symbol}")
        missing = self._missing()
        while missing:
            for name in missing:
                if not await self._ask(
                    reflection_pb2.ServerReflectionRequest(file_by_filename=name)
                ):
                    local = descriptor_pb2.FileDescriptorProto()
                    descriptor_pool.Default().FindFileByName(name).CopyToProto(local)
                    self._files[name] = local
            missing = self._missing()
        await self._call.done_writing()
        await self._call.read()  # the end of the stream
        return self._files

    def close(self) -> None:
        """End the stream if it is still open (after a failure)."""
        self._call.cancel()

    def _missing(self) -> list[str]:
        return sorted(
            {dep for proto in self._files.values() for dep in proto.dependency} - set(self._files)
        )


def _pool_of(files: _FileProtos) -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        added.add(name)
        for dep in files[name].dependency:
            add(dep)
        pool.AddSerializedFile(files[name].SerializeToString())

    for name in sorted(files):
        add(name)
    return pool


def _types_of(method: MethodDescriptor) -> _MethodTypes:
    return _MethodTypes(
        request=message_factory.GetMessageClass(method.input_type),
        response=message_factory.GetMessageClass(method.output_type),
    )


class GrpcActionTargets:
    """Calls registered actions; `addresses` maps each registering service (its mTLS identity)
    to host:port. One channel per service, kept open; method types cached per method (a target
    that changes a method's messages needs a broker restart)."""

    def __init__(
        self,
        addresses: Mapping[str, str],
        certs: CertFiles,
        signer: PrincipalSigner,
        *,
        timeout: float = 30.0,
    ) -> None:
        self._addresses = dict(addresses)
        self._certs = certs
        self._signer = signer
        self._timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._types: dict[str, _MethodTypes] = {}

    def _channel(self, service: str) -> grpc.aio.Channel:
        channel = self._channels.get(service)
        if channel is None:
            address = self._addresses.get(service)
            if not address:
                raise TargetCallError(
                    "UNAVAILABLE", f"no address is configured for service {service}"
                )
            channel = self._channels[service] = secure_channel(address, self._certs)
        return channel

    async def _method_types(self, channel: grpc.aio.Channel, method: str) -> _MethodTypes:
        known = self._types.get(method)
        if known is not None:
            return known
        full = _full_name(method)
        service = full.rsplit(".", 1)[0]
        reflection = _Reflection(channel, self._timeout)
        try:
            files = await reflection.files_of(service)
            types = _types_of(_pool_of(files).FindMethodByName(full))
        except (grpc.aio.AioRpcError, LookupError, TypeError) as reflected:
            try:
                types = _types_of(descriptor_pool.Default().FindMethodByName(full))
            except KeyError:
                raise TargetCallError(
                    "UNAVAILABLE", f"cannot learn the messages of {method}: {reflected}"
                ) from reflected
        finally:
            reflection.close()
        self._types[method] = types
        return types

    async def call(
        self,
        service: str,
        method: str,
        data: dict[str, Any],
        principal: principal_pb2.Principal,
    ) -> dict[str, Any]:
        channel = self._channel(service)
        types = await self._method_types(channel, method)
        request = types.request()
        try:
            json_format.ParseDict(data, request, ignore_unknown_fields=False)
        except json_format.ParseError as exc:
            raise TargetCallError(
                "INVALID_ARGUMENT", f"the input does not fit {request.DESCRIPTOR.full_name}: {exc}"
            ) from exc
        stub = channel.unary_unary(
            method,
            request_serializer=types.request.SerializeToString,
            response_deserializer=types.response.FromString,
        )
        try:
            reply = await stub(
                request,
                timeout=self._timeout,
                metadata=call_metadata(assertion=self._signer.sign(principal)),
            )
        except grpc.aio.AioRpcError as exc:
            raise TargetCallError(exc.code().name, exc.details() or "") from exc
        output: dict[str, Any] = whole_numbers(
            json_format.MessageToDict(reply, preserving_proto_field_name=True)
        )
        return output

    async def close(self) -> None:
        """Close every channel (idempotent)."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
