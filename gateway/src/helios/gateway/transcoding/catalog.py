"""The HTTP bindings of every annotated RPC, read from the generated descriptors at start-up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from helios.gateway.transcoding.path_template import PathTemplate
from helios.proto.ai_broker.v1 import ai_broker_pb2
from helios.proto.audit.v1 import audit_pb2
from helios.proto.authz.v1 import authz_pb2
from helios.proto.identity.v1 import identity_pb2
from helios.proto.keyvault.v1 import keyvault_pb2
from helios.proto.options.v1 import options_pb2

__all__ = ["HELIOS_FILES", "HttpBinding", "load_bindings"]

# Every service contract the gateway fronts; a new annotated RPC in one of these files is routed
# with no gateway change.
HELIOS_FILES: tuple[FileDescriptor, ...] = (
    identity_pb2.DESCRIPTOR,
    authz_pb2.DESCRIPTOR,
    ai_broker_pb2.DESCRIPTOR,
    audit_pb2.DESCRIPTOR,
    keyvault_pb2.DESCRIPTOR,
)
_VERBS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class HttpBinding:
    """One HTTP route of one RPC."""

    verb: str
    template: PathTemplate
    body: str
    method: MethodDescriptor
    upstream: str
    public: bool
    permission: str
    dangerous: bool

    @property
    def rpc_path(self) -> str:
        """The gRPC method path `/package.Service/Method`."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        """Whether the RPC streams its responses (served as NDJSON)."""
        return bool(self.method.server_streaming)

    def request_class(self) -> type[Message]:
        """The generated request message class."""
        return GetMessageClass(self.method.input_type)

    def response_class(self) -> type[Message]:
        """The generated response message class."""
        return GetMessageClass(self.method.output_type)


def _upstream_of(method: MethodDescriptor) -> str:
    # helios.proto.<svc>.v1 -> the service's network name (ai_broker -> ai-broker)
    return method.containing_service.file.package.split(".")[2].replace("_", "-")


def _rules(rule: http_pb2.HttpRule) -> Iterable[tuple[str, str, str]]:
    pattern = rule.WhichOneof("pattern")
    if pattern in _VERBS:
        yield pattern.upper(), getattr(rule, pattern), rule.body
    elif pattern == "custom":
        yield rule.custom.kind.upper(), rule.custom.path, rule.body
    for extra in rule.additional_bindings:
        yield from _rules(extra)


def load_bindings(files: Iterable[FileDescriptor] = HELIOS_FILES) -> list[HttpBinding]:
    """Every (verb, path) of every annotated method; raises ValueError on a duplicate route."""
    bindings: list[HttpBinding] = []
    seen: set[tuple[str, str]] = set()
    for file in files:
        for service in file.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if not options.HasExtension(annotations_pb2.http):
                    continue
                authz = options.Extensions[options_pb2.authz]
                for verb, path, body in _rules(options.Extensions[annotations_pb2.http]):
                    if (verb, path) in seen:
                        raise ValueError(f"two RPCs bind {verb} {path}")
                    seen.add((verb, path))
                    bindings.append(
                        HttpBinding(
                            verb=verb,
                            template=PathTemplate.parse(path),
                            body=body,
                            method=method,
                            upstream=_upstream_of(method),
                            public=authz.public,
                            permission=authz.permission,
                            dangerous=authz.dangerous,
                        )
                    )
    return bindings
