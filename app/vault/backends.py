"""Object stores for ciphertext, behind one ``Backend`` protocol.

``local`` keeps objects in a directory; ``s3`` in a bucket (AWS or any S3-compatible
endpoint). Provider errors are translated here, at the boundary: a missing object raises
``ObjectNotFound``, anything else the store does wrong ``StorageUnavailable``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from app.vault.errors import ObjectNotFound, StorageUnavailable
from config import ConfigurationError

LOCAL_DIRNAME = "vault"
# S3 rejects parts below 5 MiB (except the last) and uploads of more than 10,000 parts.
S3_MIN_PART_BYTES = 5 * 1024 * 1024
S3_MAX_PARTS = 10_000
_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
_S3_MISSING = {"NoSuchKey", "404", "NotFound"}


class ObjectReader(Protocol):
    """Bytes of one stored object from a starting offset; ``object_size`` is the whole object's."""

    object_size: int

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """Where ciphertext is kept. Keys are relative paths such as ``objects/ab/ab12…``."""

    def write(self, key: str, chunks: Iterable[bytes], size: int) -> None:
        """Store ``size`` bytes under ``key`` so that it appears whole or not at all.

        An exception from ``chunks`` leaves nothing stored and propagates unchanged.
        """
        ...

    def open_range(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        """Read ``length`` bytes (to the end if None) from ``offset`` with one seek or ranged GET.

        Past the end of the object, the reader gives fewer bytes or none. Raises ObjectNotFound.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is already removed."""
        ...


def check_key(key: str) -> str:
    """Raises ValueError unless ``key`` is a plain relative path of safe names."""
    if not _KEY_PATTERN.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"not a valid object key: {key!r}")
    return key


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _local_errors(action: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(f"{action} local storage failed: {exc.strerror}.") from None


class _FileReader:
    def __init__(self, handle: Any, object_size: int, length: int | None) -> None:
        self._handle = handle
        self.object_size = object_size
        self._remaining = length

    def read(self, size: int, /) -> bytes:
        if self._remaining is not None:
            size = min(size, self._remaining)
        with _local_errors("Reading from"):
            data: bytes = self._handle.read(size)
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


class LocalBackend:
    """Objects as files under ``root``, written to a temporary file, fsynced, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def write(self, key: str, chunks: Iterable[bytes], size: int) -> None:
        path = self._path(key)
        with _local_errors("Writing to"):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb", buffering=0) as handle:
                for chunk in chunks:
                    view = memoryview(chunk)
                    with _local_errors("Writing to"):
                        while view:
                            view = view[handle.write(view) :]
                with _local_errors("Writing to"):
                    os.fsync(fd)
            with _local_errors("Writing to"):
                os.replace(temporary, path)
                fsync_directory(path.parent)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def open_range(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        try:
            handle = open(self._path(key), "rb", buffering=0)  # noqa: SIM115 (the reader owns it)
        except FileNotFoundError:
            raise ObjectNotFound(f"No stored object has the key {key}.") from None
        except OSError as exc:
            raise StorageUnavailable(
                f"Reading from local storage failed: {exc.strerror}."
            ) from None
        try:
            with _local_errors("Reading from"):
                object_size = os.fstat(handle.fileno()).st_size
                handle.seek(offset)
        except StorageUnavailable:
            handle.close()
            raise
        return _FileReader(handle, object_size, length)

    def delete(self, key: str) -> None:
        with _local_errors("Deleting from"):
            self._path(key).unlink(missing_ok=True)


class _S3Reader:
    def __init__(self, body: Any, object_size: int, key: str) -> None:
        self._body = body
        self.object_size = object_size
        self._key = key

    def read(self, size: int, /) -> bytes:
        if self._body is None:
            return b""
        with _s3_errors(self._key):
            data: bytes = self._body.read(size)
        return data

    def close(self) -> None:
        if self._body is not None:
            self._body.close()


class S3Backend:
    """Objects in an S3 bucket under ``prefix``; large ones go up as multipart uploads."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        multipart_threshold: int,
        part_size: int,
    ) -> None:
        if part_size < S3_MIN_PART_BYTES:
            raise ConfigurationError(
                f"MEGABOX_S3_MULTIPART_CHUNK_BYTES must be at least {S3_MIN_PART_BYTES}"
            )
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def write(self, key: str, chunks: Iterable[bytes], size: int) -> None:
        name = self._name(key)
        if size < self.multipart_threshold:
            body = bytearray()
            for chunk in chunks:
                body += chunk
            with _s3_errors(key):
                self.client.put_object(Bucket=self.bucket, Key=name, Body=bytes(body))
            return
        self._write_multipart(name, key, chunks, max(self.part_size, -(-size // S3_MAX_PARTS)))

    def _write_multipart(
        self, name: str, key: str, chunks: Iterable[bytes], part_size: int
    ) -> None:
        with _s3_errors(key):
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=name)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            buffer = bytearray()
            for chunk in chunks:
                buffer += chunk
                while len(buffer) >= part_size:
                    self._upload_part(name, key, upload_id, parts, buffer[:part_size])
                    del buffer[:part_size]
            if buffer or not parts:
                self._upload_part(name, key, upload_id, parts, buffer)
            with _s3_errors(key):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            # Should the abort fail too, the bucket's AbortIncompleteMultipartUpload lifecycle
            # rule reclaims the parts.
            with suppress(BotoCoreError, ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            raise

    def _upload_part(
        self, name: str, key: str, upload_id: str, parts: list[dict[str, Any]], data: bytearray
    ) -> None:
        number = len(parts) + 1
        with _s3_errors(key):
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                PartNumber=number,
                Body=bytes(data),
            )
        parts.append({"ETag": response["ETag"], "PartNumber": number})

    def open_range(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        name = self._name(key)
        if length == 0:
            return _S3Reader(None, self._size(name, key), key)
        byte_range = f"bytes={offset}-" + ("" if length is None else str(offset + length - 1))
        try:
            with _s3_errors(key):
                response = self.client.get_object(Bucket=self.bucket, Key=name, Range=byte_range)
        except StorageUnavailable as exc:
            if exc.details.get("provider_code") != "InvalidRange":
                raise
            return _S3Reader(None, self._size(name, key), key)
        content_range = response.get("ContentRange")
        if content_range:
            object_size = int(content_range.rsplit("/", 1)[1])
        else:
            object_size = response["ContentLength"]
        return _S3Reader(response["Body"], object_size, key)

    def _size(self, name: str, key: str) -> int:
        with _s3_errors(key):
            size: int = self.client.head_object(Bucket=self.bucket, Key=name)["ContentLength"]
        return size

    def delete(self, key: str) -> None:
        with _s3_errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))


@contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """Translate botocore errors into ObjectNotFound or StorageUnavailable."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _S3_MISSING:
            raise ObjectNotFound(f"No stored object has the key {key}.") from None
        raise StorageUnavailable(
            f"S3 refused the request for {key}: {code or 'unknown error'}.",
            {"provider_code": code},
        ) from None
    except BotoCoreError as exc:
        raise StorageUnavailable(f"S3 could not be reached: {exc}.") from None


def backend_from_config(config: Mapping[str, Any]) -> Backend:
    """The backend that ``STORAGE_URL`` names.

    ``""`` is ``instance/vault``; ``file:///abs/path`` a directory; ``s3://bucket/prefix`` a
    bucket, at ``S3_ENDPOINT_URL`` if set. Raises ConfigurationError for any other URL.
    """
    url = config["STORAGE_URL"]
    if not url:
        return LocalBackend(Path(config["INSTANCE_PATH"]) / LOCAL_DIRNAME)
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        return LocalBackend(Path(unquote(parts.path)))
    if parts.scheme == "s3" and parts.netloc:
        endpoint = config["S3_ENDPOINT_URL"] or None
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=config["S3_REGION"],
            # Self-hosted S3 (MinIO, moto, Ceph) serves buckets by path, not by host name.
            config=BotoConfig(s3={"addressing_style": "path" if endpoint else "auto"}),
        )
        return S3Backend(
            client,
            parts.netloc,
            unquote(parts.path),
            multipart_threshold=config["S3_MULTIPART_THRESHOLD_BYTES"],
            part_size=config["S3_MULTIPART_CHUNK_BYTES"],
        )
    raise ConfigurationError(
        "MEGABOX_STORAGE_URL must be empty, file:///absolute/path or s3://bucket/prefix"
    )
