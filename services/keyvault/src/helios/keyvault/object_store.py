"""Where attachment objects live: a local directory (default) or an S3 bucket, both streamed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from helios.kernel.errors import InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

__all__ = [
    "DEFAULT_PART_SIZE",
    "DEFAULT_READ_SIZE",
    "MIN_PART_SIZE",
    "LocalObjectStore",
    "ObjectStore",
    "S3ObjectStore",
    "check_name",
]

DEFAULT_READ_SIZE = 1024 * 1024
# S3 wants every part but the last to be at least 5 MiB.
MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MAX_NAME = 512


def check_name(name: str) -> str:
    """`name` if it is a safe object name: `/`-separated segments of letters, digits, `.`, `_`,
    `-` (each starting with a letter or digit, so no `..`, no absolute path, no empty segment);
    raises InvalidArgumentError otherwise."""
    if len(name) > _MAX_NAME or not all(_SEGMENT.fullmatch(s) for s in name.split("/")):
        raise InvalidArgumentError("not a valid object name", field="name")
    return name


class ObjectStore(Protocol):
    """Named byte objects written and read as streams, never whole in memory.

    Names are checked with `check_name` (InvalidArgumentError otherwise). Writes are atomic: a
    reader sees the old object, the complete new one, or nothing.
    """

    async def put_stream(self, name: str, chunks: AsyncIterator[bytes]) -> int:
        """Store the bytes of `chunks` under `name`, replacing any object there; returns the
        size. If `chunks` raises, nothing is stored and the error propagates. Idempotent for
        equal content."""
        ...

    def get_stream(self, name: str) -> AsyncGenerator[bytes, None]:
        """The object's bytes in chunks; NotFoundError (on first iteration) if there is none.
        Close the iterator (`contextlib.aclosing`) when stopping early."""
        ...

    async def delete(self, name: str) -> bool:
        """Remove the object; True if it existed. Idempotent."""
        ...

    async def exists(self, name: str) -> bool:
        """Whether an object is stored under `name`."""
        ...


class LocalObjectStore:
    """Objects as files under `root` (0600 files in 0700 folders), written to a temporary file
    in the same folder, fsynced and renamed into place. Blocking file calls run in threads."""

    def __init__(self, root: Path, *, read_size: int = DEFAULT_READ_SIZE) -> None:
        self._root = root
        self._read_size = read_size

    def _path(self, name: str) -> Path:
        path = self._root / check_name(name)
        # Defence in depth: even a name that passed the check must stay under the root.
        root = self._root.resolve()
        if not path.resolve().is_relative_to(root):
            raise InvalidArgumentError("not a valid object name", field="name")
        return path

    def _folders(self, folder: Path) -> None:
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        current = self._root
        for part in folder.relative_to(self._root).parts:
            current = current / part
            current.mkdir(mode=0o700, exist_ok=True)

    async def put_stream(self, name: str, chunks: AsyncIterator[bytes]) -> int:
        """See ObjectStore.put_stream."""
        path = self._path(name)
        await asyncio.to_thread(self._folders, path.parent)
        # mkstemp creates the file 0600 with O_EXCL.
        fd, temp = await asyncio.to_thread(
            tempfile.mkstemp, prefix=".upload-", suffix=".tmp", dir=path.parent
        )
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    await asyncio.to_thread(out.write, chunk)
                    size += len(chunk)
                await asyncio.to_thread(out.flush)
                await asyncio.to_thread(os.fsync, out.fileno())
            await asyncio.to_thread(os.replace, temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        await asyncio.to_thread(_fsync_folder, path.parent)
        return size

    async def get_stream(self, name: str) -> AsyncGenerator[bytes, None]:
        """See ObjectStore.get_stream."""
        path = self._path(name)
        try:
            source: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise NotFoundError("no such attachment") from None
        try:
            while chunk := await asyncio.to_thread(source.read, self._read_size):
                yield chunk
        finally:
            source.close()

    async def delete(self, name: str) -> bool:
        """See ObjectStore.delete."""
        path = self._path(name)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        await asyncio.to_thread(_fsync_folder, path.parent)
        return True

    async def exists(self, name: str) -> bool:
        """See ObjectStore.exists."""
        return await asyncio.to_thread(self._path(name).is_file)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3ObjectStore:
    """Objects in an S3 bucket (any S3 API) under `prefix`: uploads go part by part (multipart
    upload, aborted on failure), so at most one part (`part_size`) is held in memory; downloads
    read the body in chunks. boto3 is synchronous: its calls run in threads."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        prefix: str = "",
        part_size: int = DEFAULT_PART_SIZE,
        read_size: int = DEFAULT_READ_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError("S3 parts must be at least 5 MiB")
        if prefix:
            check_name(prefix)
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self._part_size = part_size
        self._read_size = read_size

    def _key(self, name: str) -> str:
        return self._prefix + check_name(name)

    async def put_stream(self, name: str, chunks: AsyncIterator[bytes]) -> int:
        """See ObjectStore.put_stream; an object smaller than one part is one PutObject."""
        key = self._key(name)
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= self._part_size:
                    if upload_id is None:
                        created = await asyncio.to_thread(
                            self._client.create_multipart_upload, Bucket=self._bucket, Key=key
                        )
                        upload_id = created["UploadId"]
                    part = bytes(buffer[: self._part_size])
                    del buffer[: self._part_size]
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                await asyncio.to_thread(
                    self._client.put_object, Bucket=self._bucket, Key=key, Body=bytes(buffer)
                )
                return size
            if buffer or not parts:
                parts.append(await self._upload_part(key, upload_id, len(parts) + 1, buffer))
            await asyncio.to_thread(
                self._client.complete_multipart_upload,
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(
                    asyncio.to_thread(
                        self._client.abort_multipart_upload,
                        Bucket=self._bucket,
                        Key=key,
                        UploadId=upload_id,
                    )
                )
            raise
        return size

    async def _upload_part(
        self, key: str, upload_id: str, number: int, body: bytes | bytearray
    ) -> dict[str, Any]:
        done = await asyncio.to_thread(
            self._client.upload_part,
            Bucket=self._bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=bytes(body),
        )
        return {"ETag": done["ETag"], "PartNumber": number}

    async def get_stream(self, name: str) -> AsyncGenerator[bytes, None]:
        """See ObjectStore.get_stream."""
        key = self._key(name)
        missing = self._client.exceptions.NoSuchKey
        try:
            found = await asyncio.to_thread(self._client.get_object, Bucket=self._bucket, Key=key)
        except missing:
            raise NotFoundError("no such attachment") from None
        body = found["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, self._read_size):
                yield chunk
        finally:
            body.close()

    async def delete(self, name: str) -> bool:
        """See ObjectStore.delete (a versioned bucket keeps older versions: use one without
        versioning, or a lifecycle rule, for deletion to shred)."""
        key = self._key(name)
        if not await self.exists(name):
            return False
        await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=key)
        return True

    async def exists(self, name: str) -> bool:
        """See ObjectStore.exists."""
        key = self._key(name)
        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self._bucket, Key=key)
        except self._client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True
