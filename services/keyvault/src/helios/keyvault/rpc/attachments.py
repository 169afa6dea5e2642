"""The attachment RPCs (E5), a mixin of KeyvaultServicer: client stream in, server stream out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import grpc

from helios.kernel.context import current_call
from helios.kernel.errors import InvalidArgumentError
from helios.keyvault.attachments import AttachmentService
from helios.proto.keyvault.v1 import keyvault_pb2, keyvault_pb2_grpc

__all__ = ["MAX_RESPONSE_CHUNK", "AttachmentRpc"]

Context = grpc.aio.ServicerContext[Any, Any]
# GetAttachment messages stay well below the 4 MiB message limit whatever the segment size.
MAX_RESPONSE_CHUNK = 1024 * 1024


class AttachmentRpc(keyvault_pb2_grpc.KeyvaultServiceServicer):
    """Attachments (see helios.keyvault.attachments); the servicer that mixes it in sets
    `self._attachments`. Chunks go from the request to the use case and back only: they are
    never logged or put in an error."""

    _attachments: AttachmentService

    async def PutAttachment(  # noqa: N802 - gRPC method name
        self,
        request_iterator: AsyncIterator[keyvault_pb2.PutAttachmentRequest],
        context: Context,
    ) -> keyvault_pb2.PutAttachmentResponse:
        service = self._attachments
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "target":
            raise InvalidArgumentError("the first message must name the target", field="target")
        target = first.target

        async def chunks() -> AsyncIterator[bytes]:
            async for message in requests:
                if message.WhichOneof("part") == "target":
                    raise InvalidArgumentError(
                        "only the first message names the target", field="target"
                    )
                yield message.chunk

        info = await service.put(
            current_call(), target.org_id, target.key_id, target.attachment_id, chunks()
        )
        return keyvault_pb2.PutAttachmentResponse(
            attachment_id=info.attachment_id,
            size_bytes=info.size,
            segment_count=info.segments,
            key_id=str(info.key_id),
            key_version=info.key_version,
        )

    async def GetAttachment(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.GetAttachmentRequest, context: Context
    ) -> AsyncIterator[keyvault_pb2.GetAttachmentResponse]:
        service = self._attachments
        plaintext = service.get(current_call(), request.org_id, request.attachment_id)
        async with aclosing(plaintext) as chunks:
            async for chunk in chunks:
                for start in range(0, len(chunk), MAX_RESPONSE_CHUNK):
                    yield keyvault_pb2.GetAttachmentResponse(
                        chunk=chunk[start : start + MAX_RESPONSE_CHUNK]
                    )

    async def DeleteAttachment(  # noqa: N802 - gRPC method name
        self, request: keyvault_pb2.DeleteAttachmentRequest, context: Context
    ) -> keyvault_pb2.DeleteAttachmentResponse:
        await self._attachments.delete(current_call(), request.org_id, request.attachment_id)
        return keyvault_pb2.DeleteAttachmentResponse()
