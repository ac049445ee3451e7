"""The S3 backend (or any S3-compatible store) through boto3: multipart uploads for large
objects, ranged GETs, and provider errors translated at this boundary (the details logged,
the messages generic)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from app.vault.backends import S3_MAX_PARTS, S3_MIN_PART_BYTES, ObjectReader, check_key
from app.vault.errors import ObjectNotFound, StorageUnavailable
from config import ConfigurationError

_S3_MISSING = {"NoSuchKey", "404", "NotFound"}

logger = logging.getLogger(__name__)


class _S3Reader:
    def __init__(self, body: Any, object_size: int, key: str) -> None:
        self._body = body
        self.object_size = object_size
        self._key = key

    def readinto(self, buffer: memoryview, /) -> int:
        if self._body is None:
            return 0
        with _s3_errors(self._key):
            count: int = self._body.readinto(buffer)
        return count

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

    def write(self, key: str, chunks: Iterable[bytes | memoryview], size: int) -> None:
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
        self, name: str, key: str, chunks: Iterable[bytes | memoryview], part_size: int
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
            if exc.provider_code != "InvalidRange":
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
            logger.error("vault: no stored object has the S3 key %s", key)
            raise ObjectNotFound() from None
        if code != "InvalidRange":  # a read past the end: open_range answers it, not an error
            logger.error("vault: S3 refused the request for %s: %s", key, code or "unknown")
        raise StorageUnavailable(provider_code=code) from None
    except BotoCoreError as exc:
        logger.error("vault: S3 could not be reached for %s: %s", key, exc)
        raise StorageUnavailable() from None


def s3_backend(config: Mapping[str, Any], bucket: str, prefix: str) -> S3Backend:
    """The backend for ``s3://bucket/prefix``, at ``S3_ENDPOINT_URL`` if set."""
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
        bucket,
        prefix,
        multipart_threshold=config["S3_MULTIPART_THRESHOLD_BYTES"],
        part_size=config["S3_MULTIPART_CHUNK_BYTES"],
    )
