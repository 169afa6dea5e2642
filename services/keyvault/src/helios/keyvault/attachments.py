"""Attachments (E5): large content sealed as a stream under a per-attachment data key."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from helios.keyvault.domain import ciphertext
from helios.keyvault.domain.ciphertext import CiphertextError, Kind
from helios.keyvault.domain.streaming import (
    SEGMENT_SIZE,
    ObjectHeader,
    OpeningStream,
    SealingStream,
    parse_object_header,
)
from helios.keyvault.object_store import ObjectStore
from helios.keyvault.ports import UnitOfWork
from helios.keyvault.service import Aad, KeyvaultService

__all__ = ["DEFAULT_MAX_BYTES", "AttachmentInfo", "AttachmentService"]

DEFAULT_MAX_BYTES = 5 * 1024**3
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TABLE, _COLUMN = "attachment", "content"
# An object header is at most 10 + 1024 + 40 bytes; reading more than this before it parses
# means the object is not an attachment.
_MAX_HEADER_READ = 2048


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """What a put stored: plaintext size, segments, the key version wrapping the data key."""

    attachment_id: str
    size: int
    segments: int
    key_id: uuid.UUID
    key_version: int


class AttachmentService:
    """Put / get / delete attachments in an object store; keyvault holds only the KEKs.

    Each attachment has its own data key, made by `KeyvaultService.generate_data_key` and
    stored wrapped in the object's header (AAD: table `attachment`, row the attachment id, column
    `content`, and the org), so deleting the object shreds the data key with it. The stream key
    is bound to the same context: an object copied to another id or org does not open.
    """

    def __init__(
        self,
        keyvault: KeyvaultService,
        store: ObjectStore,
        uow: UnitOfWork,
        *,
        segment_size: int = SEGMENT_SIZE,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._keyvault = keyvault
        self._store = store
        self._uow = uow
        self._segment_size = segment_size
        self._max_bytes = max_bytes

    def _where(self, ctx: CallContext, org_id: str, attachment_id: str) -> tuple[str, str]:
        """The org acted in and the object name; raises PermissionDeniedError or
        InvalidArgumentError."""
        org = self._keyvault.org_of(ctx, org_id)
        if not org or not _ID.fullmatch(org):
            raise InvalidArgumentError("org_id is required for attachments", field="org_id")
        if not _ID.fullmatch(attachment_id):
            raise InvalidArgumentError(
                "attachment_id must be 1-128 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit",
                field="attachment_id",
            )
        return org, f"{org}/{attachment_id}"

    @staticmethod
    def _aad(attachment_id: str) -> Aad:
        return Aad(table=_TABLE, row_id=attachment_id, column=_COLUMN)

    @staticmethod
    def _stream_aad(org: str, attachment_id: str) -> bytes:
        return ciphertext.context_aad(org, _TABLE, attachment_id, _COLUMN)

    async def put(
        self,
        ctx: CallContext,
        org_id: str,
        key_id: str,
        attachment_id: str,
        chunks: AsyncIterator[bytes],
    ) -> AttachmentInfo:
        """Seal `chunks` under a new data key and store them; nothing is stored if `chunks`
        fails or passes `max_bytes` (InvalidArgumentError). AlreadyExistsError if the id is
        taken; the KEK must be an encryption key of the org. Audited."""
        org, name = self._where(ctx, org_id, attachment_id)
        if await self._store.exists(name):
            raise AlreadyExistsError("an attachment with this id exists already")
        data_key, wrapped = await self._keyvault.generate_data_key(
            ctx, org, key_id, self._aad(attachment_id)
        )
        sealing = SealingStream(
            data_key, self._stream_aad(org, attachment_id), segment_size=self._segment_size
        )
        header = ObjectHeader(self._segment_size, wrapped.blob, sealing.header).encode()

        async def sealed() -> AsyncIterator[bytes]:
            yield header
            async for chunk in chunks:
                if sealing.size + len(chunk) > self._max_bytes:
                    raise InvalidArgumentError(
                        f"attachments are limited to {self._max_bytes} bytes", field="chunk"
                    )
                for segment in sealing.update(chunk):
                    yield segment
            yield sealing.finish()

        await self._store.put_stream(name, sealed())
        info = AttachmentInfo(
            attachment_id=attachment_id,
            size=sealing.size,
            segments=sealing.segments,
            key_id=wrapped.key_id,
            key_version=wrapped.version,
        )
        diff: dict[str, object] = {
            "size": info.size,
            "segments": info.segments,
            "key_id": str(info.key_id),
            "key_version": info.key_version,
        }
        async with self._uow() as tx:
            await tx.record(self._change("keyvault.attachment.put", org, attachment_id, diff), ctx)
        return info

    async def get(
        self, ctx: CallContext, org_id: str, attachment_id: str
    ) -> AsyncGenerator[bytes, None]:
        """The attachment's plaintext, segment by segment, each authenticated before it is
        yielded; NotFoundError if there is none; CiphertextError (INVALID_ARGUMENT) as soon as
        the object turns out truncated, reordered or altered, so a reader sees at most a prefix
        of the true content followed by the error. Close the iterator when stopping early."""
        org, name = self._where(ctx, org_id, attachment_id)
        async with aclosing(self._store.get_stream(name)) as source:
            buffer = b""
            parsed: tuple[ObjectHeader, int] | None = None
            async for chunk in source:
                buffer += chunk
                parsed = parse_object_header(buffer)
                if parsed is not None or len(buffer) > _MAX_HEADER_READ:
                    break
            if parsed is None:
                raise CiphertextError("not a Helios attachment (header missing)")
            header, offset = parsed
            opened = await self._keyvault.decrypt(
                ctx, org, header.wrapped_key, self._aad(attachment_id), kind=Kind.DATA_KEY
            )
            opening = OpeningStream(
                opened.blob,
                self._stream_aad(org, attachment_id),
                header.stream_header,
                segment_size=header.segment_size,
            )
            pending = buffer[offset:]
            del buffer
            for plaintext in opening.update(pending):
                yield plaintext
            del pending
            async for chunk in source:
                for plaintext in opening.update(chunk):
                    yield plaintext
            final = opening.finish()
            if final:
                yield final

    async def delete(self, ctx: CallContext, org_id: str, attachment_id: str) -> None:
        """Delete the object and with it the stored copy of its wrapped data key: the content
        is gone for good. (A copy of the whole object taken before, such as a backup or an older
        version in a versioned bucket, opens while its KEK version lives: destroying that version
        shreds those too.) NotFoundError if there is none. Audited."""
        org, name = self._where(ctx, org_id, attachment_id)
        if not await self._store.delete(name):
            raise NotFoundError("no such attachment")
        async with self._uow() as tx:
            await tx.record(self._change("keyvault.attachment.delete", org, attachment_id, {}), ctx)

    @staticmethod
    def _change(action: str, org: str, attachment_id: str, diff: dict[str, object]) -> Change:
        return Change(
            action=action,
            resource_type="keyvault.attachment",
            resource_id=attachment_id,
            org_id=org,
            diff=diff,
        )
