"""`/openapi.json` (OpenAPI 3.1) and `/docs`, generated from the same descriptors as the routes."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from helios.gateway.transcoding.catalog import HttpBinding
from helios.proto.identity.v1 import identity_pb2

__all__ = ["build_document", "openapi_routes"]

_INT32 = {"type": "integer", "format": "int32"}
# proto3 JSON writes 64-bit integers as strings and reads both forms.
_INT64 = {"type": ["integer", "string"], "format": "int64", "pattern": r"^-?[0-9]+$"}
_UINT64 = {"type": ["integer", "string"], "format": "int64", "minimum": 0, "pattern": r"^[0-9]+$"}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "minimum": 0},
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.FieldMask": {"type": "string"},
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message"],
            "properties": {
                "code": {"type": "string"},
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"@type": {"type": "string"}}},
                },
            },
        }
    },
}


class _Schemas:
    """Collects component schemas of the messages the document refers to."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": _ERROR}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        name = descriptor.full_name.removeprefix("helios.proto.")
        if name not in self.components:
            self.components[name] = {}  # placeholder first: messages may be recursive
            self.components[name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(field)
        if field.is_repeated:
            return {"type": "array", "items": single}
        return single

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        return dict(_SCALARS[field.type])

    def _message(self, descriptor: Descriptor) -> dict[str, Any]:
        properties = {field.name: self.field(field) for field in descriptor.fields}
        return {"type": "object", "properties": properties, "additionalProperties": False}


def _json_content(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"content": {media: {"schema": schema}}}


def _path_schema(request: Descriptor, path: str) -> dict[str, Any]:
    field = request.fields_by_name.get(path)
    if field is None or field.message_type is not None or field.enum_type is not None:
        return {"type": "string"}
    schema = dict(_SCALARS[field.type])
    if schema.get("type") == ["integer", "string"]:
        schema["type"] = "string"  # a path segment is text; the pattern keeps it numeric
    return schema


def _operation(binding: HttpBinding, schemas: _Schemas) -> dict[str, Any]:
    method = binding.method
    request = method.input_type
    parameters: list[dict[str, Any]] = [
        {"name": field, "in": "path", "required": True, "schema": _path_schema(request, field)}
        for field in binding.template.fields
    ]
    if binding.body != "*":
        bound = {f.split(".")[0] for f in binding.template.fields} | {binding.body}
        for field in request.fields:
            if field.name in bound or (
                field.message_type is not None and field.message_type.full_name not in _WELL_KNOWN
            ):
                continue
            parameters.append({"name": field.name, "in": "query", "schema": schemas.field(field)})
    media = "application/x-ndjson" if binding.server_streaming else "application/json"
    operation: dict[str, Any] = {
        "operationId": f"{method.containing_service.name}_{method.name}",
        "summary": method.name,
        "tags": [binding.upstream],
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", **_json_content(schemas.ref(method.output_type), media)},
            "default": {
                "description": "Error",
                **_json_content({"$ref": "#/components/schemas/Error"}),
            },
        },
        "x-helios-permission": binding.permission,
        "x-helios-dangerous": binding.dangerous,
    }
    if binding.public:
        operation["security"] = []
    if binding.body == "*":
        operation["requestBody"] = {"required": False, **_json_content(schemas.ref(request))}
    elif binding.body:
        field = request.fields_by_name[binding.body]
        operation["requestBody"] = {"required": False, **_json_content(schemas.field(field))}
    return operation


def _session_opening(
    schemas: _Schemas,
    operation_id: str,
    request: Descriptor,
    response: Descriptor,
    description: str,
    *,
    public: bool = True,
) -> dict[str, Any]:
    """A POST route of /api/auth that opens a session and sets its cookies."""
    error = {"description": "Error", **_json_content({"$ref": "#/components/schemas/Error"})}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "description": description,
        "requestBody": {"required": True, **_json_content(schemas.ref(request))},
        "responses": {
            "200": {"description": "OK", **_json_content(schemas.ref(response))},
            "default": error,
        },
    }
    if public:
        operation["security"] = []
    return {"post": operation}


def _auth_paths(schemas: _Schemas) -> dict[str, Any]:
    error = {"description": "Error", **_json_content({"$ref": "#/components/schemas/Error"})}
    sign_in_out = schemas.ref(identity_pb2.SignInResponse.DESCRIPTOR)
    return {
        "/api/auth/sign-up": {
            "post": {
                "operationId": "auth_signUp",
                "security": [],
                "requestBody": {
                    "required": True,
                    **_json_content(schemas.ref(identity_pb2.SignUpRequest.DESCRIPTOR)),
                },
                "responses": {
                    "201": {
                        "description": "Created",
                        **_json_content(schemas.ref(identity_pb2.SignUpResponse.DESCRIPTOR)),
                    },
                    "default": error,
                },
            }
        },
        "/api/auth/sign-in": {
            "post": {
                "operationId": "auth_signIn",
                "description": "Sets the session cookie; the token is never in the body. When a"
                " second factor is needed (A3) it answers {second_factor: {challenge_token,"
                " methods, expires_at}} instead, without a cookie.",
                "security": [],
                "requestBody": {
                    "required": True,
                    **_json_content(schemas.ref(identity_pb2.SignInRequest.DESCRIPTOR)),
                },
                "responses": {
                    "200": {"description": "OK", **_json_content(sign_in_out)},
                    "default": error,
                },
            }
        },
        "/api/auth/second-factor": _session_opening(
            schemas,
            "auth_secondFactor",
            identity_pb2.CompleteSecondFactorRequest.DESCRIPTOR,
            identity_pb2.CompleteSecondFactorResponse.DESCRIPTOR,
            "Answers a sign-in's second-factor challenge; sets the session cookie, and the"
            " remembered-device cookie when remember_device was asked (A3, A9).",
        ),
        "/api/auth/magic-link": _session_opening(
            schemas,
            "auth_magicLink",
            identity_pb2.RedeemMagicLinkRequest.DESCRIPTOR,
            identity_pb2.RedeemMagicLinkResponse.DESCRIPTOR,
            "Redeems a mailed sign-in link (A8): sets the session cookie, or answers"
            " {second_factor} without one.",
        ),
        "/api/auth/impersonate": _session_opening(
            schemas,
            "auth_impersonate",
            identity_pb2.StartImpersonationRequest.DESCRIPTOR,
            identity_pb2.StartImpersonationResponse.DESCRIPTOR,
            "Acts as another member of the org (S6): keeps the admin's session aside.",
            public=False,
        ),
        "/api/auth/impersonate/stop": {
            "post": {
                "operationId": "auth_stopImpersonation",
                "description": "Ends the impersonation and restores the admin's own session.",
                "responses": {
                    "200": {
                        "description": "OK",
                        **_json_content(
                            schemas.ref(identity_pb2.GetCurrentUserResponse.DESCRIPTOR)
                        ),
                    },
                    "default": error,
                },
            }
        },
        "/api/auth/sign-out": {
            "post": {
                "operationId": "auth_signOut",
                "responses": {"204": {"description": "Signed out"}, "default": error},
            }
        },
        "/api/auth/session": {
            "get": {
                "operationId": "auth_session",
                "responses": {
                    "200": {
                        "description": "OK",
                        **_json_content(
                            schemas.ref(identity_pb2.GetCurrentUserResponse.DESCRIPTOR)
                        ),
                    },
                    "default": error,
                },
            }
        },
    }


def build_document(bindings: Sequence[HttpBinding]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route the gateway serves from the protos."""
    schemas = _Schemas()
    paths: dict[str, Any] = _auth_paths(schemas)
    for binding in bindings:
        path = paths.setdefault(binding.template.openapi_path, {})
        path[binding.verb.lower()] = _operation(binding, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Helios API", "version": "v1"},
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "helios_session"}
            },
        },
        "security": [{"session": []}],
    }


def openapi_routes(bindings: Sequence[HttpBinding]) -> list[Route]:
    """`GET /openapi.json` and a script-free `GET /docs` page listing the operations."""
    document = build_document(bindings)
    rows = "".join(
        f"<tr><td>{html.escape(verb.upper())}</td><td><code>{html.escape(path)}</code></td>"
        f"<td>{html.escape(str(op.get('x-helios-permission', '')))}</td></tr>"
        for path, operations in document["paths"].items()
        for verb, op in operations.items()
    )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Helios API</title></head>"
        "<body><h1>Helios API</h1><p>Machine-readable: <a href=/openapi.json>/openapi.json</a>"
        "</p><table><tr><th>Method</th><th>Path</th><th>Permission</th></tr>"
        f"{rows}</table></body></html>"
    )

    async def openapi(_: Request) -> Response:
        return JSONResponse(document)

    async def docs(_: Request) -> Response:
        return HTMLResponse(page)

    return [Route("/openapi.json", openapi, methods=["GET"]), Route("/docs", docs, methods=["GET"])]
